"""espnet_hatiam: HAT transducer + internal acoustic model + dual blank thresholding for ESPnet2."""

__version__ = "0.1.0"
