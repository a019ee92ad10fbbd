"""Corpus download and Kaldi-table/audio I/O shared by the recipes and the command-line tools."""
