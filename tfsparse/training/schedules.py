"""Learning-rate schedules of the papers' training policies."""

from tfsparse.compat import keras
from tfsparse.compat import tf


@keras.utils.register_keras_serializable(package="tfsparse")
class CaffeInvDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Caffe's ``inv`` policy used for the LeNets: lr = base · (1 + γ·step)^(−power).

    Caffe's ``lenet_solver.prototxt`` uses base 0.01, γ = 1e-4, power 0.75 with SGD
    momentum 0.9; Guo et al. train with that policy for 50,000 iterations of batch 64.
    """

    def __init__(self, base_lr, gamma=1e-4, power=0.75):
        self.base_lr = float(base_lr)
        self.gamma = float(gamma)
        self.power = float(power)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        return self.base_lr * tf.pow(1.0 + self.gamma * step, -self.power)

    def get_config(self):
        return {"base_lr": self.base_lr, "gamma": self.gamma, "power": self.power}


LR_SCHEDULES = ("constant", "caffe_inv", "thirds", "cosine")


def make_schedule(name, base_lr, total_steps):
    """Builds a schedule by name.

    Names: ``constant``; ``caffe_inv`` (LeNet policy); ``thirds`` (Stop-E of Wang et al.:
    ÷10 after each third of training); ``cosine`` (cosine decay to 0).

    Raises:
      ValueError: for an unknown name.
    """
    if name == "constant":
        return float(base_lr)
    if name == "caffe_inv":
        return CaffeInvDecay(base_lr)
    if name == "thirds":
        third = max(1, int(total_steps) // 3)
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [third, 2 * third], [base_lr, base_lr / 10, base_lr / 100]
        )
    if name == "cosine":
        return keras.optimizers.schedules.CosineDecay(base_lr, max(1, int(total_steps)))
    raise ValueError(f"unknown lr_schedule {name!r}; choose from {LR_SCHEDULES}")
