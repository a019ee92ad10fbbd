from espnet_hatiam.models.hat_model import ESPnetHATModel

__all__ = ["ESPnetHATModel"]
