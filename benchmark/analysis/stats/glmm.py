"""Logistic mixed model with crossed random effects, participant (intercept and condition
slopes, correlated) and item (intercept), fitted by maximum likelihood with the Laplace
approximation, with Wald intervals that hold their coverage.

    logit P(correct) = X beta + Z_p b[participant] + sd_i * u[item],
    b ~ N(0, Sigma) (q x q, unstructured),  u ~ N(0, 1)

lme4: `glmer(correct ~ ... + (1 + condition | participant) + (1 | item), nAGQ = 0)`; with
`Z_p` a column of ones it is `(1 | participant) + (1 | item)`. Sigma = L L' with L lower
triangular, searched as log-Cholesky (log of L's diagonal, L's off-diagonal free), so every
candidate is a valid covariance and the search has no constraint between parameters.

Why not statsmodels' variational Bayes (`BinomialBayesMixedGLM.fit_vb`)? Its posterior SDs,
published as 95% intervals, covered the true condition effects in only 78-84% of simulated
Latin-square studies (the intercept in 24-28%); this fit covers them in 93-96% (see
docs/report.md, "Choosing the mixed-model intervals"). Random intercepts alone covered only
0.78-0.82 when participants differ in their condition effects; the slopes restore it.

The criterion is lme4's `nAGQ = 0`: for given covariance parameters, beta and the spherical
random effects are found together by penalised Newton steps (PIRLS); the parameters maximise the
Laplace approximation of the marginal likelihood over that inner fit; the covariance of beta is
the beta block of the inverse joint precision at the optimum (lme4's `vcov(use.hessian =
FALSE)`). Speed: trials are reduced to their distinct fixed/random design rows ("patterns", one
per group x condition cell), so the sums over trials are a few `bincount`s; items are eliminated
first (their block is diagonal), so the only dense factorisation is of a
(p + q x participants)-square matrix.

A cell (group x condition) at 0% or 100% has no finite ML estimate. `fit` then adds a weak
N(0, 10^2) prior on the fixed effects so the fit stays finite; the terms that depend on such a
cell are found by `separated_terms` and must not be read as effects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, optimize
from scipy.special import expit
from threadpoolctl import threadpool_limits

SEPARATION_PRIOR_SD = 10.0   # weak prior on fixed effects, used only when a cell is separated
SD_BOUNDS = (1e-3, 20.0)     # random-effect SDs (L's diagonal) searched in this range (logit)
OFFDIAG_BOUND = 20.0         # L's off-diagonal entries searched in (-20, 20)


@dataclass(frozen=True)
class Fit:
    beta: np.ndarray          # fixed effects
    cov: np.ndarray           # their covariance (conditional on Sigma, as lme4's nAGQ=0)
    sd_participant: float     # SD of the participant intercepts
    sd_item: float
    converged: bool
    deviance: float           # -2 x Laplace log-likelihood
    re_cov: np.ndarray        # Sigma: covariance of the participant effects (q x q)

    @property
    def re_sd(self) -> np.ndarray:
        """SDs of the participant effects, intercept first (lme4's `VarCorr` SDs)."""
        return np.sqrt(np.diag(self.re_cov))

    @property
    def re_corr(self) -> np.ndarray:
        sd = self.re_sd
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.re_cov / np.outer(sd, sd)


def _loglik(y: np.ndarray, eta: np.ndarray) -> float:
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


def _chol(theta: np.ndarray, q: int) -> np.ndarray:
    """L from the log-Cholesky vector: q log-diagonal entries, then the off-diagonal by row."""
    L = np.diag(np.exp(theta[:q]))
    L[np.tril_indices(q, -1)] = theta[q:q * (q + 1) // 2]
    return L


def _theta(L: np.ndarray) -> np.ndarray:
    q = L.shape[0]
    return np.r_[np.log(np.diag(L)), L[np.tril_indices(q, -1)]]


class _Problem:
    """The data, reduced to design patterns, and the precision blocks every evaluation needs.
    Random effects are spherical: participant j's effects are b_j = L z_j, z_j ~ N(0, I)."""

    def __init__(self, X, Z, y, part, item, prior_sd):
        X, Z = np.asarray(X, float), np.asarray(Z, float)
        self.y = np.asarray(y, float)
        self.part, self.item = np.asarray(part, np.int64), np.asarray(item, np.int64)
        self.n_part, self.n_item = int(self.part.max()) + 1, int(self.item.max()) + 1
        self.p, self.q = X.shape[1], Z.shape[1]
        XZ = np.ascontiguousarray(np.hstack([X, Z]))
        rows = XZ.view(np.dtype((np.void, XZ.dtype.itemsize * XZ.shape[1]))).ravel()
        code = pd.factorize(rows)[0]                 # hashing: fast where np.unique sorts
        patterns = XZ[np.unique(code, return_index=True)[1]]
        self.Xc, self.Zc, self.c = patterns[:, :self.p], patterns[:, self.p:], code
        self.Zt = self.Zc[code]                          # trial x q
        self.n_pat = len(patterns)
        self.jc = self.part * self.n_pat + self.c
        self.ji = self.part * self.n_item + self.item
        self.ic = self.item * self.n_pat + self.c
        self.ridge = 0.0 if prior_sd is None else 1.0 / prior_sd ** 2
        self.beta = np.zeros(self.p)
        self.z = np.zeros((self.n_part, self.q))   # warm starts between evaluations
        self.u = np.zeros(self.n_item)
        self.diag = (np.arange(self.n_part)[:, None] * self.q + np.arange(self.q))

    def _bin(self, index, w, size):
        return np.bincount(index, w, size)

    def eta(self, beta, z, u, L, si):
        """Linear predictor per trial: one value per (participant, pattern), then gathered."""
        table = z @ (self.Zc @ L).T + self.Xc @ beta     # participant x pattern
        return table.ravel()[self.jc] + si * u[self.item]

    def penalised(self, beta, z, u, L, si) -> float:
        return (_loglik(self.y, self.eta(beta, z, u, L, si)) - 0.5 * np.sum(z * z)
                - 0.5 * u @ u - 0.5 * self.ridge * beta @ beta)

    def blocks(self, w, L, si):
        """Precision for weights w: A over (beta, z), B coupling (beta, z) to u, the diagonal
        d of the u block, and the z block P and z-u coupling C for the log determinant."""
        npart, nitem, npat, p, q = self.n_part, self.n_item, self.n_pat, self.p, self.q
        R = self.Zc @ L
        Wjc = self._bin(self.jc, w, npart * npat).reshape(npart, npat)
        Wic = self._bin(self.ic, w, nitem * npat).reshape(nitem, npat)
        xwx = self.Xc.T @ (self.Xc * Wjc.sum(0)[:, None]) + self.ridge * np.eye(p)
        WR = Wjc[:, :, None] * R[None]                   # participant x pattern x q
        xwz = np.tensordot(self.Xc, WR, axes=([0], [1])).reshape(p, npart * q)
        zwz = np.matmul(WR.transpose(0, 2, 1), R) + np.eye(q)
        P = np.zeros((npart, q, npart, q))
        P[np.arange(npart), :, np.arange(npart), :] = zwz
        P = P.reshape(npart * q, npart * q)
        d = 1.0 + si * si * self._bin(self.item, w, nitem)
        xwu = si * (self.Xc.T @ Wic.T)
        wr = w[:, None] * R[self.c]
        C = si * np.stack([self._bin(self.ji, wr[:, k], npart * nitem).reshape(npart, nitem)
                           for k in range(q)], axis=1).reshape(npart * q, nitem)
        A = np.block([[xwx, xwz], [xwz.T, P]])
        B = np.vstack([xwu, C])
        return A, B, d, P, C

    def gradient(self, beta, z, u, L, si, r):
        rjc = self._bin(self.jc, r, self.n_part * self.n_pat).reshape(self.n_part, self.n_pat)
        g_beta = self.Xc.T @ rjc.sum(0) - self.ridge * beta
        g_z = rjc @ (self.Zc @ L) - z
        g_u = si * self._bin(self.item, r, self.n_item) - u
        return g_beta, g_z, g_u

    def inner(self, L, si, tol=1e-10, max_iter=100):
        """PIRLS: maximise the penalised likelihood over (beta, z, u) for given L and si.
        Returns (beta, z, u, Cholesky factor of the Schur complement over (beta, z), blocks),
        the factor and blocks taken at the returned mode (the last Newton step, below tol, is
        not taken)."""
        beta, z, u = self.beta.copy(), self.z.copy(), self.u.copy()
        p = self.p
        old = self.penalised(beta, z, u, L, si)
        for _ in range(max_iter):
            mu = expit(self.eta(beta, z, u, L, si))
            g_beta, g_z, g_u = self.gradient(beta, z, u, L, si, self.y - mu)
            blocks = self.blocks(mu * (1 - mu), L, si)
            A, B, d = blocks[:3]
            fac = _factor(A - (B / d) @ B.T)
            top = _solve(fac, np.r_[g_beta, g_z.ravel()] - B @ (g_u / d))
            d_u = (g_u - B.T @ top) / d
            d_beta, d_z = top[:p], top[p:].reshape(self.n_part, self.q)
            if max(np.abs(top).max(), np.abs(d_u).max(initial=0)) < tol:
                break
            t = 1.0
            while t > 1e-6:  # step halving keeps every step an ascent
                new = self.penalised(beta + t * d_beta, z + t * d_z, u + t * d_u, L, si)
                if new >= old - 1e-12:
                    break
                t /= 2
            beta, z, u, old = beta + t * d_beta, z + t * d_z, u + t * d_u, new
        self.beta, self.z, self.u = beta, z, u
        return beta, z, u, fac, blocks

    def deviance_at(self, L, si, gradient: bool = False):
        """-2 x Laplace log-likelihood with beta in the inner fit (lme4's nAGQ = 0); with
        `gradient`, also its derivatives by L's lower triangle (diagonal first, then by row)
        and by si. The fixed-effects prior, when there is one, is counted in the criterion."""
        beta, z, u, fac, (A, B, d, P, C) = self.inner(L, si)
        try:
            chol = linalg.cholesky(P - (C / d) @ C.T, lower=True, check_finite=False)
        except linalg.LinAlgError:
            return (np.inf, None) if gradient else np.inf
        eta = self.eta(beta, z, u, L, si)
        dev = (-2 * _loglik(self.y, eta) + np.sum(z * z) + u @ u
               + self.ridge * beta @ beta + 2 * np.sum(np.log(np.diag(chol)))
               + np.sum(np.log(d)))
        if not gradient:
            return dev
        return dev, self._gradient(beta, z, u, L, si, eta, fac, B, d, C, chol)

    def _gradient(self, beta, z, u, L, si, eta, fac, B, d, C, chol):
        """d deviance / d (L, si): the inner fit's moves are the envelope's (none, at the mode)
        plus the log determinant's, whose weights move with the mode (implicit derivative of
        the mode by the joint precision, as in the Newton step)."""
        npart, npat, nitem, p, q = self.n_part, self.n_pat, self.n_item, self.p, self.q
        part, item = self.part, self.item
        mu = expit(eta)
        w, r = mu * (1 - mu), self.y - mu
        w1 = w * (1 - 2 * mu)                               # d w / d eta
        R = self.Zc @ L
        Rt = self.Zt @ L                                    # trial x q
        # the random-effects precision M = [[P, C], [C', diag(d)]]: its inverse's blocks
        Sinv = linalg.cho_solve((chol, True), np.eye(len(chol)), check_finite=False)
        Cd = C / d
        Mzu = -(Sinv @ Cd)                                  # (participant, q) x item
        Muu = 1 / d - np.sum(Cd * Mzu, axis=0)              # its diagonal
        Mjj = Sinv.reshape(npart, q, npart, q)[np.arange(npart), :, np.arange(npart), :]
        Mzu_t = Mzu.reshape(npart, q, nitem)[part, :, item]  # trial x q
        G = np.einsum("jbk,ck->jcb", Mjj, R).reshape(npart * npat, q)[self.jc] + si * Mzu_t
        Gu = np.sum(Mzu_t * Rt, axis=1) + si * Muu[item]
        h = np.sum(Rt * G, axis=1) + si * Gu                # leverage of each trial
        rows, cols = (np.r_[np.arange(q), np.tril_indices(q, -1)[0]],
                      np.r_[np.arange(q), np.tril_indices(q, -1)[1]])
        K = len(rows) + 1
        Zt = self.Zt
        delta = np.c_[Zt[:, rows] * z[part][:, cols], u[item]]   # d eta / d theta, mode fixed
        term1 = 2 * np.r_[(Zt.T @ (w[:, None] * G))[rows, cols], w @ Gu]
        zr = self._bin((part[:, None] * q + np.arange(q)).ravel(), (Zt * r[:, None]).ravel(),
                       npart * q).reshape(npart, q)
        d_z = np.zeros((K, npart, q))
        d_z[np.arange(K - 1), :, cols] = zr[:, rows].T
        d_u = np.zeros((K, nitem))
        d_u[-1] = self._bin(item, r, nitem)
        wd = (w[:, None] * delta).ravel()

        def sums(index, size):      # per-index sums of each column of wd: size x K
            return self._bin((index[:, None] * K + np.arange(K)).ravel(), wd,
                             size * K).reshape(size, K)

        wd_jc = sums(self.jc, npart * npat).reshape(npart, npat, K)
        g_beta = -self.Xc.T @ wd_jc.sum(0)
        g_z = d_z - np.einsum("jcK,ck->Kjk", wd_jc, R)
        g_u = d_u - si * sums(item, nitem).T
        top = _solve(fac, np.vstack([g_beta, g_z.reshape(K, -1).T]) - B @ (g_u.T / d[:, None]))
        s_u = (g_u.T - B.T @ top) / d[:, None]               # item x K
        s_beta, s_z = top[:p], top[p:].reshape(npart, q, K)
        table = (np.einsum("jkK,ck->jcK", s_z, R) + (self.Xc @ s_beta)[None]).reshape(
            npart * npat, K)
        v = w1 * h                              # d log det / d eta, per trial
        d_logdet = (v @ delta + self._bin(self.jc, v, npart * npat) @ table
                    + si * self._bin(item, v, nitem) @ s_u)
        grad = -2 * (r @ delta) + term1 + d_logdet
        chain = np.r_[np.diag(L), np.ones(len(rows) - q), si]   # log-diagonal and log si
        return grad * chain

    def deviance(self, params) -> float:
        return self.deviance_at(_chol(params[:-1], self.q), np.exp(params[-1]))

    def deviance_and_gradient(self, params):
        dev, grad = self.deviance_at(_chol(params[:-1], self.q), np.exp(params[-1]), True)
        return dev, (np.full(len(params), np.nan) if grad is None else grad)


def _factor(S):
    try:
        return linalg.cho_factor(S, check_finite=False)
    except linalg.LinAlgError:
        return S


def _solve(fac, rhs):
    if isinstance(fac, tuple):
        return linalg.cho_solve(fac, rhs, check_finite=False)
    return np.linalg.lstsq(fac, rhs, rcond=None)[0]


def fit(X, y, participants, items, Z=None, prior_sd: float | None = None,
        sd: tuple[float, float] | None = None, start: Fit | None = None) -> Fit:
    """Fit the model; `participants`/`items` are integer codes 0..n-1; `Z` is the participant
    random-effects design (trials x q; default: intercept only). `sd` fixes the participant SDs
    (all q, uncorrelated) and the item SD instead of estimating them (used by tests against
    plain logistic regression). `prior_sd` puts a N(0, prior_sd^2) prior on the fixed effects.
    `start`: a fit whose participant-intercept and item SDs start the search."""
    # one BLAS thread: the matrices are small (a few hundred rows) and many; threads only
    # contend (on 2 busy cores the slopes fit took 40x the CPU time with OpenBLAS's threads)
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(X, y, participants, items, Z, prior_sd, sd, start)


def _fit(X, y, participants, items, Z, prior_sd, sd, start) -> Fit:
    Z = np.ones((len(y), 1)) if Z is None else np.asarray(Z, float)
    prob = _Problem(X, Z, y, participants, items, prior_sd)
    q = prob.q
    # start from ordinary logistic regression (a tiny ridge keeps separated cells finite)
    beta = np.zeros(prob.p)
    X = np.asarray(X, float)
    for _ in range(30):
        mu = expit(X @ beta)
        H = X.T @ (X * (mu * (1 - mu))[:, None]) + 1e-4 * np.eye(prob.p)
        step = np.linalg.solve(H, X.T @ (prob.y - mu) - 1e-4 * beta)
        beta += step
        if np.abs(step).max() < 1e-8:
            break
    prob.beta = beta if start is None else np.asarray(start.beta, float).copy()
    lo, hi = np.log(SD_BOUNDS)
    bounds = ([(lo, hi)] * q + [(-OFFDIAG_BOUND, OFFDIAG_BOUND)] * (q * (q - 1) // 2)
              + [(lo, hi)])
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if sd is None:
            sp0, si0 = (0.5, 0.5) if start is None else (start.sd_participant, start.sd_item)
            x0 = np.clip(np.r_[np.log(max(sp0, 0.05)), np.full(q - 1, np.log(0.3)),
                               np.zeros(q * (q - 1) // 2), np.log(max(si0, 0.05))],
                         lo + 1e-6, hi - 1e-6)
            res = optimize.minimize(prob.deviance_and_gradient, x0, jac=True,
                                    method="L-BFGS-B", bounds=bounds,
                                    options={"ftol": 1e-10, "gtol": 1e-5, "maxiter": 500})
            params, converged = np.asarray(res.x), bool(res.success)
        else:
            params = np.r_[np.full(q, np.log(sd[0])), np.zeros(q * (q - 1) // 2),
                           np.log(sd[1])]
            converged = True
        dev = float(prob.deviance(params))
        L, si = _chol(params[:-1], q), float(np.exp(params[-1]))
        beta, _, _, fac, _ = prob.inner(L, si)
        cov = _solve(fac, np.eye(fac[0].shape[0] if isinstance(fac, tuple)
                                 else fac.shape[0])[:, :prob.p])[:prob.p]
    re_cov = L @ L.T
    return Fit(beta, cov, float(np.sqrt(re_cov[0, 0])), si, converged, dev, re_cov)


def separated_terms(cells_at_bound: set[tuple[str, str]], terms: list[str],
                    ref_group: str, ref_condition: str) -> dict[str, list[tuple[str, str]]]:
    """Terms with no finite ML estimate, for treatment coding of condition x group.

    A cell (group g, condition c) at 0% or 100% drives its log-odds to infinity. The intercept
    is cell (ref, ref); condition[c] contrasts (ref, c) with (ref, ref); group[g] contrasts
    (g, ref) with (ref, ref); condition[c]:group[g] involves (g, c), (ref, c), (g, ref) and
    (ref, ref). A term is inestimable when any cell it involves is at a bound."""
    out = {}
    for term in terms:
        cond, group = ref_condition, ref_group
        for part in term.split(":"):
            if part.startswith("condition["):
                cond = part[len("condition["):-1]
            elif part.startswith("group["):
                group = part[len("group["):-1]
        involved = {(ref_group, ref_condition), (ref_group, cond), (group, ref_condition),
                    (group, cond)}
        if involved & cells_at_bound:
            out[term] = sorted(involved & cells_at_bound)
    return out
