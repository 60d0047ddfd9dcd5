"""The papers' own numbers, with where each is printed, to set beside ours.

These are citations, not results: every number of ours in the book is computed by a notebook.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "PaperModel",
    "PAPER_MODELS",
    "ADVERSARIAL_TRAINING",
    "CARLINI_MNIST_ACCURACY",
    "CARLINI_TABLE4",
    "GOODFELLOW",
    "PAPERNOT",
    "PAPERNOT_BLACKBOX",
    "SZEGEDY_TABLE1",
    "SZEGEDY_TABLE2",
    "SZEGEDY_TABLE2_COLUMNS",
    "SZEGEDY_DISJOINT",
]


@dataclass(frozen=True)
class PaperModel:
    """A model of the study as its paper reports it."""

    paper: str  # bibtex key
    label: str  # the paper's name for it
    test_error: float | None  # fraction
    epochs: int | None
    where: str
    note: str  # what the paper leaves open or what we do differently, in one sentence


PAPER_MODELS: dict[str, PaperModel] = {
    "lenet_paper": PaperModel(
        "papernot2016limitations",
        "LeNet (Theano tutorial)",
        1 - 0.9941,
        200,
        "Sec. V-A",
        "the paper trains 200 epochs; accuracy still rises with epochs at our schedule",
    ),
    "lenet_relu": PaperModel(
        "papernot2016limitations",
        "(none: our ReLU/Adam variant)",
        None,
        None,
        "-",
        "not in the paper; a modern training of the same architecture, "
        "to see how the model changes the attack",
    ),
    "fc10(0.0001)": PaperModel(
        "szegedy2014intriguing",
        "FC10(1e-4)",
        0.074,
        None,
        "Table 1",
        "Szegedy et al. do not give the optimiser or how λ scales the decay; we add λ·ΣW² to the mean loss",
    ),
    "fc10(0.01)": PaperModel(
        "szegedy2014intriguing",
        "FC10(1e-2)",
        0.094,
        None,
        "Table 1",
        "the same weight-decay convention; in the paper, as here, error rises with λ",
    ),
    "fc10(1.0)": PaperModel(
        "szegedy2014intriguing",
        "FC10(1)",
        0.20,
        None,
        "Table 1",
        "with λ = 1 the decay dominates the loss, as in the paper the error grows sharply",
    ),
    "fc100_100_10": PaperModel(
        "szegedy2014intriguing",
        "FC100-100-10",
        0.0164,
        None,
        "Table 1",
        "activation and training schedule are not stated; we use sigmoid units and Adam",
    ),
    "fc200_200_10": PaperModel(
        "szegedy2014intriguing",
        "FC200-200-10",
        0.0154,
        None,
        "Table 1",
        "activation and training schedule are not stated; we use sigmoid units and Adam",
    ),
    "logreg_3v7": PaperModel(
        "goodfellow2015explaining",
        "logistic regression, 3 vs 7",
        0.016,
        None,
        "Fig. 2",
        "Goodfellow et al. give no training details; we train with Adam on the 3s and 7s of the 60k set",
    ),
}

#: Goodfellow et al. 2015: FGSM at ε = 0.25 on MNIST (Sec. 4 and Fig. 2).
GOODFELLOW = {
    "logreg_clean_error": 0.016,
    "logreg_adv_error": 0.99,
    "softmax_adv_error": 0.999,
    "softmax_adv_confidence": 0.793,
    "maxout_adv_error": 0.894,
    "maxout_adv_confidence": 0.976,
    "eps": 0.25,
}

#: Carlini and Wagner 2017 (arXiv 1608.04644v2), Table IV, MNIST columns: mean distance (over
#: successes) and success rate of targeted attacks on the first 1,000 test images, with the
#: target the easiest of the nine (best), a random one (average) and the hardest (worst);
#: distances on the [0, 1] pixel scale (their Sec. II-D). Their model (Table I, Sec. IV): 3×3
#: convolutions 32-32, max-pool, 64-64, max-pool, fully connected 200-200 (ReLU), softmax, trained
#: 50 epochs with momentum SGD and dropout (Table II), "99.5% accuracy on MNIST". ``None``: no
#: entry ("−").
CARLINI_TABLE4: dict[str, dict[str, tuple[float | None, float]]] = {
    "l2": {"best": (1.36, 1.0), "average": (1.76, 1.0), "worst": (2.60, 1.0)},
    "deepfool_l2": {"best": (2.11, 1.0)},
    "linf": {"best": (0.13, 1.0), "average": (0.16, 1.0), "worst": (0.23, 1.0)},
    "fgs_linf": {"best": (0.22, 1.0), "average": (0.26, 0.42), "worst": (None, 0.0)},
    "igs_linf": {"best": (0.14, 1.0), "average": (0.19, 1.0), "worst": (0.26, 1.0)},
}
#: Carlini and Wagner's MNIST model's test accuracy (their Sec. IV).
CARLINI_MNIST_ACCURACY = 0.995

#: Adversarial training: Goodfellow et al. 2015, Sec. 6 (a maxout network's error on FGSM samples
#: at ε = 0.25, before and after training on their objective with α = 0.5), and Papernot et al.
#: 2016 (JSMA's success and distortion after training on 18,000 JSMA samples, relative changes).
ADVERSARIAL_TRAINING = {
    "goodfellow_adv_error_before": 0.894,
    "goodfellow_adv_error_after": 0.179,
    "goodfellow_alpha": 0.5,
    "goodfellow_eps": 0.25,
    "papernot_samples": 18000,
    "papernot_success_change": -0.072,
    "papernot_distortion_change": 0.375,
}

#: Papernot et al. 2017 ("Practical Black-Box Attacks against Machine Learning", abstract): the
#: share of FGSM samples crafted on their substitute that MetaMind's hosted MNIST network
#: misclassified, and the label queries the substitute was trained on.
PAPERNOT_BLACKBOX = {"misclassified": 0.8424, "queries": 6400}

#: Papernot et al. 2016: JSMA on their LeNet (Sec. V, Fig. 11, and the θ < 0 variant).
PAPERNOT = {
    "test_accuracy": 0.9941,
    "epochs": 200,
    "gamma": 0.145,
    # Sec. V-A, Fig. 11: 10,000 samples of each set, each toward its 9 other classes.
    "attacks_per_set": 90_000,
    "success": {"train": 0.9705, "validation": 0.9719, "test": 0.9705},
    "distortion_all": {"train": 0.0445, "validation": 0.0441, "test": 0.0445},
    "distortion_success": {"train": 0.0403, "validation": 0.0401, "test": 0.0403},
    "decrease_success": 0.647,
    "decrease_distortion": 0.0362,
    # Sec. V-B, hardness (Eq. 10): the distortion bounds Υ of the trapezoid rule.
    "hardness_upsilons": [0.003, 0.013, 0.026, 0.051, 0.077, 0.102, 0.128, 0.255, 0.383],
    # Sec. V: MNIST inputs have 28 x 28 = 784 features.
    "n_features": 784,
}

#: Szegedy et al. 2014, Table 1: training and test error, and the average minimum distortion
#: sqrt(Σr²/n) of their L-BFGS adversarial samples.
SZEGEDY_TABLE1 = {
    "fc10(0.0001)": {"train_error": 0.067, "test_error": 0.074, "distortion": 0.062},
    "fc10(0.01)": {"train_error": 0.10, "test_error": 0.094, "distortion": 0.10},
    "fc10(1.0)": {"train_error": 0.212, "test_error": 0.20, "distortion": 0.14},
    "fc100_100_10": {"train_error": 0.0, "test_error": 0.0164, "distortion": 0.058},
    "fc200_200_10": {"train_error": 0.0, "test_error": 0.0154, "distortion": 0.065},
    "ae400_10": {"train_error": 0.0057, "test_error": 0.019, "distortion": 0.086},
}

#: Szegedy et al. 2014, Table 2: error that samples crafted for the row's model (or Gaussian noise)
#: cause on the column's model. Columns in this order:
SZEGEDY_TABLE2_COLUMNS = [
    "fc10(0.0001)",
    "fc10(0.01)",
    "fc10(1.0)",
    "fc100_100_10",
    "fc200_200_10",
    "ae400_10",
]
SZEGEDY_TABLE2 = {
    "fc10(0.0001)": [1.0, 0.117, 0.227, 0.02, 0.039, 0.027],
    "fc10(0.01)": [0.871, 1.0, 0.352, 0.359, 0.273, 0.098],
    "fc10(1.0)": [0.719, 0.762, 1.0, 0.481, 0.47, 0.344],
    "fc100_100_10": [0.289, 0.137, 0.211, 1.0, 0.066, 0.02],
    "fc200_200_10": [0.382, 0.14, 0.238, 0.203, 1.0, 0.027],
    "ae400_10": [0.234, 0.16, 0.248, 0.094, 0.066, 1.0],
    "noise(0.1)": [0.05, 0.101, 0.183, 0.0, 0.0, 0.008],
    "noise(0.3)": [0.156, 0.113, 0.227, 0.05, 0.043, 0.031],
}

#: Szegedy et al. 2014, Tables 3-4 (disjoint training halves P1, P2 of the 60k images): samples crafted
#: for FC100-100-10 (trained on P1) and their error on FC123-456-10 (P1) and FC100-100-10' (P2).
SZEGEDY_DISJOINT = {
    "to_same_half_other_arch": 0.262,
    "to_other_half_same_arch": 0.059,
    "amplified_to_same_half_other_arch": 0.98,
    "amplified_to_other_half_same_arch": 0.43,
    "amplified_stddev": 0.1,
    "noise_0.1_error_low": 0.026,
    "noise_0.1_error_high": 0.028,
}
