from setuptools import find_packages, setup

setup(
    name="espnet_hatiam",
    version="0.1.0",
    description=(
        "Hybrid Autoregressive Transducer with Internal Acoustic Model training and "
        "dual blank thresholding for ESPnet2"
    ),
    packages=find_packages(include=["espnet_hatiam", "espnet_hatiam.*"]),
    python_requires=">=3.9",
    install_requires=[
        "torch>=2.1",
        "torchaudio>=2.1",
        "espnet>=202402",
        "sentencepiece",
        "kaldiio",
        "soundfile",
        "jiwer",
        "numpy",
        "numba",  # the compiled row plan of the beam search (also installed with espnet, through librosa)
        "threadpoolctl",  # the benchmarks hold BLAS to their --num_threads
        "matplotlib",
        "tqdm",
    ],
    license="Apache-2.0",
)
