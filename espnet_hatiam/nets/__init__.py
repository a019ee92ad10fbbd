"""Joint networks: the HAT joint (blank/label factorised) and the vanilla RNN-T baseline."""

from espnet_hatiam.nets.hat_joint import HATJointNetwork
from espnet_hatiam.nets.rnnt_joint import RNNTJointNetwork

JOINT_TYPES = {"hat": HATJointNetwork, "rnnt": RNNTJointNetwork}

__all__ = ["HATJointNetwork", "RNNTJointNetwork", "JOINT_TYPES"]
