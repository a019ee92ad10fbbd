"""Data I/O shared by the recipes and the command-line tools: corpus download, LibriSpeech-layout
corpora, Kaldi tables, audio files, data dirs (formatting, speed perturbation) and decoding dirs
(what inference writes, split and merged over parallel jobs)."""
