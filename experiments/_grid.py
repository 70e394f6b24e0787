"""Temporary: the estimator grid moved into the library (pipeline.evaluate_grid, claims.outcomes, ...)."""

from ibjax.claims import agreement, dpi_check, outcomes, unusable  # noqa: F401
from ibjax.pipeline import EstimatorSetting as Setting  # noqa: F401
from ibjax.pipeline import binary_inputs  # noqa: F401
from ibjax.pipeline import evaluate_grid as evaluate  # noqa: F401
from ibjax.plotting import agreement_figure  # noqa: F401
