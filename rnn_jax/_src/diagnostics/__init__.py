"""Vanishing and exploding gradients: Jacobians across time, spectra, the Pascanu bound, plots.

Public as ``rnn_jax.diagnostics``. Every ``∂h_T/∂h_k`` is computed exactly, by ``jax.vjp`` or
``jax.jacrev`` of a step or by the cells' hand-written backward steps; the three
must agree (``tests/test_diagnostics.py``).
"""

from rnn_jax._src.diagnostics.jacobians import (
    block_norms,
    carry_blocks,
    jacobian_norms,
    lag_jacobians,
    part_indices,
    state_gradient_norms,
    state_gradients,
    step_jacobians,
    trajectory,
)
from rnn_jax._src.diagnostics.lyapunov import lyapunov_exponent
from rnn_jax._src.diagnostics.manual import (
    jacobian_via_bptt,
    lag_jacobians_manual,
    state_gradients_manual,
)
from rnn_jax._src.diagnostics.methods import (
    MethodRow,
    compare_methods,
    format_methods,
    write_methods_csv,
)
from rnn_jax._src.diagnostics.plots import plot_lag_norms
from rnn_jax._src.diagnostics.report import (
    Model,
    block_curves,
    elman_with_radius,
    format_table,
    gradient_report,
    growth_rate,
    lag_curve,
    standard_models,
    summarise,
)
from rnn_jax._src.diagnostics.truncation import (
    TruncationAngles,
    gradient_angle,
    truncation_angles,
)
from rnn_jax._src.diagnostics.spectra import (
    DERIVATIVE_BOUNDS,
    derivative_bound,
    gate_blocks,
    largest_singular_value,
    pascanu_bound,
    recurrent_matrix,
    regime,
    scale_to_singular_value,
    scale_to_spectral_radius,
    spectral_radius,
)

__all__ = [
    "DERIVATIVE_BOUNDS", "MethodRow", "Model", "block_curves", "block_norms", "carry_blocks",
    "compare_methods", "derivative_bound", "elman_with_radius", "format_methods", "format_table",
    "gate_blocks", "gradient_report", "growth_rate", "jacobian_norms", "jacobian_via_bptt",
    "lag_curve", "lag_jacobians", "lag_jacobians_manual", "largest_singular_value",
    "lyapunov_exponent",
    "pascanu_bound", "part_indices", "plot_lag_norms", "recurrent_matrix", "regime",
    "scale_to_singular_value", "scale_to_spectral_radius", "spectral_radius", "standard_models",
    "state_gradient_norms", "state_gradients", "state_gradients_manual", "step_jacobians",
    "summarise", "trajectory", "write_methods_csv",
    "TruncationAngles", "gradient_angle", "truncation_angles",
]
