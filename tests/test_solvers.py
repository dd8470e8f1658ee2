"""Matrix-free kernels and solvers (``ntkfast.solvers``): kernel products against the dense
kernel, kernels written into caller memory (memmaps), conjugate gradients / Lanczos / Falkon
against the dense solves, and their errors and warnings."""

import warnings

import numpy as np
import pytest

import ntkfast
from ntkfast import stax
from ntkfast.solvers import conjugate_gradients, lanczos_function
from ntkfast.solvers.nystrom import rpcholesky
from ntkfast.solvers import regression
from ntkfast.solvers.partition import principal_blocks
from ntkfast.solvers.preconditioners import BlockNystromPreconditioner, jitter_ladder, jittered_cholesky


def _data(n, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    w = rng.standard_normal((d, k))
    y = np.sin(x @ w) + 0.1 * rng.standard_normal((n, k))
    return x, y


MLP = ntkfast.MLP(3, "relu", W_std=1.4, b_std=0.1)
RESNET = stax.serial(stax.Dense(64, W_std=1.3, b_std=0.1),
                     stax.FanOut(2), stax.parallel(stax.serial(stax.Erf(), stax.Dense(64, W_std=1.2)), stax.Identity()),
                     stax.FanInSum(), stax.LayerNorm(), stax.Relu(), stax.Dense(1, W_std=1.1, b_std=0.2))


def _rel(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b))


# -- kernel products ---------------------------------------------------------------------------

@pytest.mark.parametrize("model", [MLP, RESNET], ids=["mlp", "resnet"])
@pytest.mark.parametrize("get", ["nngp", "ntk"])
def test_operator_products_equal_the_dense_kernel(model, get):
    x, _ = _data(300)
    x2, _ = _data(170, seed=1)
    rng = np.random.default_rng(2)
    v = rng.standard_normal((300, 4))
    k = model.kernel(x, get=get)
    op = model.kernel_operator(x, get=get)
    assert op.shape == (300, 300) and op.dtype == np.float64
    assert _rel(op @ v, k @ v) < 1e-13
    assert _rel(op.matvec(v[:, 0]), k @ v[:, 0]) < 1e-13
    assert _rel(op.rmatmat(v), k.T @ v) < 1e-13
    shifted = model.kernel_operator(x, get=get, diag_reg=0.5)
    assert _rel(shifted @ v, k @ v + 0.5 * v) < 1e-13
    assert _rel(shifted.diagonal(), np.diag(k) + 0.5) < 1e-14
    cross = model.kernel_operator(x2, x, get=get)
    kc = model.kernel(x2, x, get=get)
    assert cross.shape == (170, 300)
    assert _rel(cross @ v, kc @ v) < 1e-13
    w = rng.standard_normal(170)
    assert _rel(cross.rmatvec(w), kc.T @ w) < 1e-13


def test_operator_in_float32_and_with_scipy():
    scipy_linalg = pytest.importorskip("scipy.sparse.linalg")
    x, _ = _data(400)
    op32 = MLP.kernel_operator(x.astype(np.float32), get="ntk")
    assert op32.dtype == np.float32
    v = np.random.default_rng(3).standard_normal((400, 2))
    k = MLP.kernel(x, get="ntk")
    assert _rel(op32 @ v, k @ v) < 1e-5
    # the top of the spectrum by Lanczos (eigsh) on the operator, against the dense eigenvalues
    top = scipy_linalg.eigsh(MLP.kernel_operator(x, get="ntk"), k=5, which="LA", return_eigenvectors=False)
    assert _rel(np.sort(top), np.linalg.eigvalsh(k)[-5:]) < 1e-10
    solved, info = scipy_linalg.cg(MLP.kernel_operator(x, get="ntk", diag_reg=1.0), v[:, 0], rtol=1e-10)
    assert info == 0
    assert _rel(solved, np.linalg.solve(k + np.eye(400), v[:, 0])) < 1e-8


def test_operator_errors_name_the_argument():
    x, _ = _data(20)
    op = MLP.kernel_operator(x, get="ntk")
    with pytest.raises(ValueError, match="v: must have shape"):
        op @ np.ones(19)
    bad = np.ones((20, 2))
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="v: contains NaN"):
        op @ bad
    with pytest.raises(ValueError, match="get: must be 'nngp' or 'ntk'"):
        MLP.kernel_operator(x, get=("nngp", "ntk"))
    with pytest.raises(ValueError, match="shift: must be a finite number"):
        MLP.kernel_operator(x, diag_reg=-1.0)
    with pytest.raises(ValueError, match="x2: has 4 features but x1 has 5"):
        MLP.kernel_operator(x, np.ones((3, 4))) @ np.ones(3)


# -- kernels into caller memory ----------------------------------------------------------------

def test_kernel_into_memory_and_memmaps_equals_the_kernel(tmp_path):
    x, _ = _data(310)
    x2, _ = _data(90, seed=4)
    k = MLP.kernel(x)
    out = np.full((310, 310), np.nan)
    assert MLP.kernel(x, get="ntk", out=out) is out
    assert np.array_equal(out, k.ntk)
    disk = np.memmap(tmp_path / "k.dat", dtype=np.float64, mode="w+", shape=(310, 90))
    disk2 = np.memmap(tmp_path / "k2.dat", dtype=np.float64, mode="w+", shape=(310, 90))
    both = MLP.kernel(x, x2, out=(disk, disk2))
    kc = MLP.kernel(x, x2)
    assert np.array_equal(np.asarray(both.nngp), kc.nngp) and np.array_equal(np.asarray(both.ntk), kc.ntk)
    disk.flush()
    reread = np.memmap(tmp_path / "k.dat", dtype=np.float64, mode="r", shape=(310, 90))
    assert np.array_equal(reread, kc.nngp)
    by_name = {"ntk": np.empty((310, 90)), "nngp": np.empty((310, 90))}
    MLP.kernel(x, x2, out=by_name)
    assert np.array_equal(by_name["ntk"], kc.ntk)
    # float32 out: computed in float32 (as float32 inputs are)
    out32 = np.empty((310, 310), dtype=np.float32)
    MLP.kernel(x, get="nngp", out=out32)
    assert np.array_equal(out32, MLP.kernel(x.astype(np.float32), get="nngp"))
    # a stax network (several registers) and a deep float32 one (computed in float64 in blocks)
    out = np.empty((310, 90))
    RESNET.kernel(x, x2, get="ntk", out=out)
    assert np.array_equal(out, RESNET.kernel(x, x2, get="ntk"))
    deep = ntkfast.MLP(20, "erf", W_std=1.2, b_std=0.1)
    out32 = np.empty((310, 310), dtype=np.float32)
    deep.kernel(x.astype(np.float32), get="ntk", out=out32)
    assert np.array_equal(out32, deep.kernel(x.astype(np.float32), get="ntk"))


def test_kernel_into_rejects_bad_outputs():
    x, _ = _data(10)
    with pytest.raises(ValueError, match=r"out.ntk: must have the kernel's shape \(10, 10\)"):
        MLP.kernel(x, get="ntk", out=np.empty((10, 9)))
    with pytest.raises(ValueError, match="must be C-contiguous"):
        MLP.kernel(x, get="ntk", out=np.empty((10, 20))[:, ::2])
    with pytest.raises(TypeError, match="out: must have dtype float32 or float64"):
        MLP.kernel(x, get="ntk", out=np.empty((10, 10), dtype=np.int64))
    with pytest.raises(TypeError, match="out: for get=.* pass a tuple of 2 arrays"):
        MLP.kernel(x, out=np.empty((10, 10)))
    with pytest.raises(ValueError, match="out: only for full kernels"):
        MLP.kernel(x, get="ntk", diagonal=True, out=np.empty(10))
    readonly = np.empty((10, 10))
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="out.ntk: must be writable"):
        MLP.kernel(x, get="ntk", out=readonly)


# -- the solvers' building blocks --------------------------------------------------------------

def test_conjugate_gradients_solves_spd_systems_column_by_column():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((60, 60))
    a = a @ a.T + 0.5 * np.eye(60)
    b = rng.standard_normal((60, 3))
    b[:, 1] = 0.0  # a zero column: solution 0 at once
    x, info = conjugate_gradients(lambda v: a @ v, b, tol=1e-12, maxiter=500)
    assert info.converged and info.residual <= 1e-12
    assert _rel(x, np.linalg.solve(a, b)) < 1e-9
    assert np.all(x[:, 1] == 0)
    with pytest.warns(RuntimeWarning, match="did not converge.*maxiter"):
        _, info = conjugate_gradients(lambda v: a @ v, b, tol=1e-12, maxiter=3)
    assert not info.converged and info.iterations == 3
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        conjugate_gradients(lambda v: -v, b, maxiter=5)


def test_lanczos_matches_matrix_functions():
    rng = np.random.default_rng(6)
    q, _ = np.linalg.qr(rng.standard_normal((80, 80)))
    values = np.geomspace(1e-3, 10.0, 80)
    a = (q * values) @ q.T
    b = rng.standard_normal((80, 2))
    times = np.array([0.5, 20.0])
    fn = lambda lam: -np.expm1(-np.outer(times, lam)) / lam  # noqa: E731
    got, info = lanczos_function(lambda v: a @ v, b, fn, tol=1e-12, maxiter=80)
    exact = np.stack([(q * fn(values)[i]) @ (q.T @ b) for i in range(2)])
    assert info.converged
    assert _rel(got, exact) < 1e-9


def test_rpcholesky_recovers_a_low_rank_kernel_exactly():
    # The NNGP of a linear network (depth 0) is x.x'/d W^2 + b^2: rank d + 1.
    x, _ = _data(200, d=4)
    linear = ntkfast.MLP(0, "relu", W_std=1.1, b_std=0.3)
    k = linear.kernel(x, get="nngp")
    factor, pivots = rpcholesky(lambda a, b: linear.kernel(a, b, get="nngp"), x, np.diag(k), 50,
                                np.random.default_rng(7), block=8)
    assert factor.shape[1] == 5 and len(set(pivots.tolist())) == 5
    assert _rel(factor @ factor.T, k) < 1e-10


def test_principal_blocks_partition_into_local_blocks():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2350, 4))
    blocks = principal_blocks(x, 200)
    every = np.sort(np.concatenate(blocks))
    assert np.array_equal(every, np.arange(2350))  # each input in exactly one block
    sizes = sorted(b.size for b in blocks)
    assert max(sizes) <= 200 and len(blocks) == 12 and sizes[1] == 200  # all full but one
    # neighbours: an input's block-mates are closer than random inputs, by a wide margin
    within = np.mean([np.mean(np.linalg.norm(x[b][:, None] - x[b][None], axis=-1)) for b in blocks])
    overall = np.mean(np.linalg.norm(x[:300, None] - x[None, 300:600], axis=-1))
    assert within < 0.75 * overall
    # images are flattened; identical inputs still split into full blocks
    assert sorted(b.size for b in principal_blocks(np.ones((10, 2, 3)), 4)) == [2, 4, 4]
    with pytest.raises(ValueError, match="size"):
        principal_blocks(x, 0)


def test_block_nystrom_preconditioner_inverts_low_rank_plus_blocks():
    # against P = F F^T + blockdiag(K - F F^T) + lam I assembled densely
    x, _ = _data(300, d=3)
    k = MLP.kernel(x, get="ntk")
    factor, _ = rpcholesky(lambda a, b: MLP.kernel(a, b, get="ntk"), x, np.diag(k), 20, np.random.default_rng(4))
    blocks = principal_blocks(x, 64)
    lam = 1e-3
    p_inv = BlockNystromPreconditioner(factor, lam, blocks, lambda idx: k[np.ix_(idx, idx)])
    residual = k - factor @ factor.T
    p = factor @ factor.T + lam * np.eye(300)
    for b in blocks:
        p[np.ix_(b, b)] += residual[np.ix_(b, b)]
    r = np.random.default_rng(5).standard_normal((300, 2))
    assert _rel(p_inv(r), np.linalg.solve(p, r)) < 1e-8
    assert _rel(p_inv(r[:, 0]), np.linalg.solve(p, r[:, 0])) < 1e-8
    # symmetric positive definite, as CG needs
    dense = p_inv(np.eye(300))
    assert _rel(dense, dense.T) < 1e-10 and np.linalg.eigvalsh(dense).min() > 0


def test_jittered_cholesky_adds_the_smallest_jitter_that_works():
    assert jitter_ladder(1e-4, 1.0) == pytest.approx([1e-4, 1e-2, 1.0]) and jitter_ladder(0.0, 1.0) == [0.0]
    # a singular PSD matrix (rank 1): no jitter fails (the core raises ValueError), 1e-4 works
    a = np.ones((3, 3))
    lower = jittered_cholesky(a, [0.0] + jitter_ladder(1e-4, 1.0))
    assert np.allclose(lower @ lower.T, a + 1e-4 * np.eye(3), atol=1e-12)
    with pytest.raises(ValueError):
        jittered_cholesky(-np.eye(3), jitter_ladder(1e-4, 1.0))


def test_blocks_cut_cg_iterations_and_keep_the_solution(monkeypatch):
    # n = 1500 with blocks of 250: CG needs clearly fewer iterations than with the low-rank part
    # alone, and still solves the exact system
    x, y = _data(1500, d=6)
    xt, _ = _data(40, d=6, seed=9)
    dense = MLP.predict(x, y, xt, diag_reg=1e-4, solver="cholesky")
    monkeypatch.setattr(regression, "PRECONDITIONER_BLOCK", 250)
    blocked, info = MLP.predict(x, y, xt, diag_reg=1e-4, solver="cg", n_centers=100, tol=1e-8, return_info=True)
    monkeypatch.setattr(regression, "PRECONDITIONER_BLOCK", 1)  # blocks of one: the diagonal only
    diagonal, info1 = MLP.predict(x, y, xt, diag_reg=1e-4, solver="cg", n_centers=100, tol=1e-8,
                                  return_info=True)
    assert _rel(blocked, dense) < 1e-6 and _rel(diagonal, dense) < 1e-6
    assert info[0].iterations < 0.75 * info1[0].iterations


# -- predictions -------------------------------------------------------------------------------

@pytest.mark.parametrize("model", [MLP, RESNET], ids=["mlp", "resnet"])
@pytest.mark.parametrize("get", ["nngp", "ntk"])
def test_cg_predictions_equal_cholesky(model, get):
    x, y = _data(400)
    xt, _ = _data(60, seed=9)
    dense = model.predict(x, y, xt, get=get, diag_reg=1e-3, solver="cholesky")
    cg, info = model.predict(x, y, xt, get=get, diag_reg=1e-3, solver="cg", tol=1e-10, return_info=True)
    assert _rel(cg, dense) < 1e-8
    assert len(info) == 1 and info[0].converged and info[0].residual <= 1e-10
    # a 1-D target, unpreconditioned, absolute diag_reg
    dense1 = model.predict(x, y[:, 0], xt, get=get, diag_reg=0.05, diag_reg_absolute_scale=True, solver="cholesky")
    cg1 = model.predict(x, y[:, 0], xt, get=get, diag_reg=0.05, diag_reg_absolute_scale=True, solver="cg",
                        n_centers=0, tol=1e-10)
    assert cg1.shape == (60,) and _rel(cg1, dense1) < 1e-8


def test_auto_is_dense_when_the_kernel_fits():
    x, y = _data(100)
    assert np.array_equal(MLP.predict(x, y, x[:7], diag_reg=1e-3),
                          MLP.predict(x, y, x[:7], diag_reg=1e-3, solver="cholesky"))


@pytest.mark.parametrize("get", ["nngp", "ntk"])
def test_nystrom_with_every_point_a_centre_is_exact(get):
    x, y = _data(300)
    xt, _ = _data(40, seed=10)
    dense = MLP.predict(x, y, xt, get=get, diag_reg=1e-2, solver="cholesky")
    for centers in ("uniform", "leverage"):
        ny, info = MLP.predict(x, y, xt, get=get, diag_reg=1e-2, solver="nystrom", n_centers=300, centers=centers,
                               tol=1e-11, maxiter=3000, return_info=True)
        assert info[0].converged
        assert _rel(ny, dense) < 1e-7


def test_nystrom_approaches_exact_regression_as_centres_grow():
    x, y = _data(600, d=3)
    xt, yt = _data(200, d=3, seed=11)
    dense = MLP.predict(x, y, xt, diag_reg=1e-2, solver="cholesky")
    errors = [_rel(MLP.predict(x, y, xt, diag_reg=1e-2, solver="nystrom", n_centers=m, seed=1), dense)
              for m in (20, 100, 400)]
    assert errors[0] > errors[1] > errors[2]


@pytest.mark.parametrize("get", ["nngp", "ntk"])
def test_lanczos_predictions_at_finite_times_equal_eigh(get):
    x, y = _data(300)
    xt, _ = _data(50, seed=12)
    for t in (0.5, 50.0, [[1.0, 30.0], [300.0, np.inf]]):
        dense = MLP.predict(x, y, xt, get=get, t=t, diag_reg=1e-3, solver="eigh")
        fast = MLP.predict(x, y, xt, get=get, t=t, diag_reg=1e-3, solver="cg", tol=1e-9)
        assert fast.shape == dense.shape
        assert _rel(fast, dense) < 1e-7
        train_dense = MLP.predict(x, y, None, get=get, t=t, diag_reg=1e-3, solver="eigh")
        train_fast = MLP.predict(x, y, None, get=get, t=t, diag_reg=1e-3, solver="cg", tol=1e-9)
        assert _rel(train_fast, train_dense) < 1e-7


@pytest.mark.parametrize("get", ["nngp", "ntk"])
def test_cg_covariance_at_convergence_equals_cholesky(get):
    x, y = _data(250)
    xt, _ = _data(30, seed=13)
    dense = MLP.predict(x, y, xt, get=get, compute_cov=True, diag_reg=1e-3, solver="cholesky")
    cg = MLP.predict(x, y, xt, get=get, compute_cov=True, diag_reg=1e-3, solver="cg", tol=1e-11)
    assert _rel(cg.mean, dense.mean) < 1e-8
    assert np.max(np.abs(cg.cov - dense.cov)) < 1e-7 * np.max(np.abs(dense.cov))


def test_ensemble_and_estimators_take_a_solver():
    x, y = _data(300)
    xt, _ = _data(20, seed=14)
    fn = ntkfast.predict.gradient_descent_mse_ensemble(MLP.kernel, x, y, diag_reg=1e-3, solver="cg", tol=1e-10)
    dense = ntkfast.predict.gradient_descent_mse_ensemble(MLP.kernel, x, y, diag_reg=1e-3)
    assert _rel(fn(None, xt, "ntk"), dense(None, xt, "ntk")) < 1e-8
    with pytest.raises(TypeError, match="kernel_fn: solver='cg' computes kernel products in the core"):
        ntkfast.predict.gradient_descent_mse_ensemble(lambda a, b=None, get=None: None, x, y, solver="cg")
    sk = pytest.importorskip("ntkfast.sklearn")
    for solver in ("cg", "nystrom"):
        est = sk.NTKRegressor(depth=3, W_std=1.4, b_std=0.1, diag_reg=1e-3, solver=solver, n_centers=300, tol=1e-10,
                              maxiter=3000).fit(x, y)
        ref = sk.NTKRegressor(depth=3, W_std=1.4, b_std=0.1, diag_reg=1e-3).fit(x, y)
        assert est.convergence_[-1].converged
        assert _rel(est.predict(xt), ref.predict(xt)) < 1e-7
    clf = sk.NTKClassifier(depth=2, diag_reg=1e-3, solver="cg", tol=1e-10).fit(x, y[:, 0] > 0)
    ref = sk.NTKClassifier(depth=2, diag_reg=1e-3).fit(x, y[:, 0] > 0)
    assert np.array_equal(clf.predict(xt), ref.predict(xt))


def test_solver_arguments_and_unsupported_combinations_raise_clearly():
    x, y = _data(50)
    with pytest.raises(ValueError, match="solver: must be one of"):
        MLP.predict(x, y, solver="lu")
    with pytest.raises(ValueError, match=r"tol: must be a number in \(0, 1\)"):
        MLP.predict(x, y, solver="cg", tol=0)
    with pytest.raises(ValueError, match="maxiter: must be a positive integer"):
        MLP.predict(x, y, solver="cg", maxiter=0)
    with pytest.raises(ValueError, match="n_centers: must be an integer >= 0"):
        MLP.predict(x, y, solver="nystrom", n_centers=-3)
    with pytest.raises(ValueError, match="centers: must be one of"):
        MLP.predict(x, y, solver="nystrom", centers="kmeans")
    with pytest.raises(NotImplementedError, match="compute_cov: with solver='cg'.*t=inf only"):
        MLP.predict(x, y, x[:3], t=1.0, compute_cov=True, solver="cg")
    with pytest.raises(NotImplementedError, match="t: finite times need solver='cg'"):
        MLP.predict(x, y, x[:3], t=1.0, solver="nystrom")
    with pytest.raises(NotImplementedError, match="compute_cov: not available with solver='nystrom'"):
        MLP.predict(x, y, x[:3], compute_cov=True, solver="nystrom")
    with pytest.raises(ValueError, match="t: solver='cholesky' solves the converged"):
        MLP.predict(x, y, x[:3], t=1.0, solver="cholesky")
    with pytest.raises(ValueError, match="x_test: has 4 features but x_train has 5"):
        MLP.predict(x, y, np.ones((3, 4)), solver="cg")


def test_a_solve_that_stops_short_warns_and_reports(capsys):
    x, y = _data(300)
    with pytest.warns(RuntimeWarning, match=r"cg \(NTK, training targets\) did not converge.*raise maxiter"):
        _, info = MLP.predict(x, y, x[:5], diag_reg=1e-6, solver="cg", n_centers=0, maxiter=2, tol=1e-12,
                              return_info=True, progress=True)
    assert info[0].iterations == 2 and not info[0].converged
    assert "NOT converged after 2 iterations" in capsys.readouterr().err
