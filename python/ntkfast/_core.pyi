from typing import Optional, Sequence, Tuple

import numpy as np

__version__: str

class MlpSpec:
    def __init__(
        self,
        depth: int,
        activation: str,
        activation_params: Sequence[float],
        W_std: float,
        b_std: Optional[float],
        readout_W_std: float,
        readout_b_std: Optional[float],
        parameterization: str,
        width: Optional[int] = None,
    ) -> None: ...
    def kernel(
        self, x1: np.ndarray, x2: Optional[np.ndarray] = None, nngp: bool = True, ntk: bool = True
    ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]: ...
    def kernel_diagonal(
        self, x: np.ndarray, nngp: bool = True, ntk: bool = True
    ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]: ...

def simd_level() -> str: ...
def num_threads() -> int: ...
