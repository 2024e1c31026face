/*
 * The fused per-sample loop of the default numeric monitor (driftwatch.detect.kernel).
 *
 * One pass over a batch does what the detectors of driftwatch/detect/detectors/ define one by one:
 * transform (log, seasonal profile, robust standardisation), local level with a Huber clip around it,
 * AR(1) prewhitening, successive differences, the six CUSUMs (mean up/down, scale up/down, tail
 * mixture up/down), the windowed shape test, and the sums the slow baseline update needs. It stops
 * at the first alarm (Stable) or at the completed recovery run (Drifting), so the Python side acts
 * once per event, never per sample. kernel.py holds the same loop in Python (the reference the
 * tests compare this one against) and documents every slot of the parameter and state arrays.
 *
 * Pure computation: no I/O, no allocation, no Python objects inside the loop.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

/* parameter slots (double) -- keep in sync with kernel.py */
enum {
    P_A, P_B, P_LO, P_HI, P_LOG, P_FLOOR,
    P_PERIOD, P_NBINS, P_LAM, P_PHI, P_PHIDEN,
    P_K, P_KUP, P_KDN,
    P_H0, P_H1, P_H2, P_H3, P_H4, P_H5,
    P_EPS, P_BETA, P_BODY_UP, P_BODY_DN,
    P_TU_T, P_TU_ZETA, P_TU_XI, P_TU_SIGMA,
    P_TD_T, P_TD_ZETA, P_TD_XI, P_TD_SIGMA,
    P_STEP, P_CRIT, P_CAP, P_REC, P_NEDGES, P_FOLLOW,
    P_SIZE
};

/* state slots (double) */
enum {
    S_S0, S_S1, S_S2, S_S3, S_S4, S_S5,
    S_LZ0, S_LZ1, S_LZ2, S_LZ3, S_LZ4, S_LZ5,
    S_M, S_UPREV, S_EPREV, S_HAVEPREV, S_T, S_NORMAL,
    S_FILLED, S_SHSTAT,
    S_SLOW_N, S_SLOW_SE, S_SLOW_SEE, S_SLOW_SD,
    S_SIZE
};

/* min/max as expressions (fmin/fmax are library calls without -ffast-math; inputs here are finite) */
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/*
 * The six CUSUMs move as three pairs (mean up/down, scale up/down, tail up/down) of two-lane vectors.
 * Why: written as scalars, "restart at zero, remember when" compiles to two data-dependent branches per
 * CUSUM, and a statistic that hovers at zero takes each one either way at random -- twelve branches a
 * sample, half of them mispredicted, were most of the loop's time. Lane-wise compare-and-select has no
 * branch. Every lane operation is the IEEE operation the scalar code does (SSE2's minpd/maxpd are
 * exactly MIN/MAX above, operand order included), so the numbers are bit-for-bit those of the scalar
 * loop and of kernel.run_reference. SSE2 is part of x86-64; elsewhere the same pair type is a struct
 * of two doubles with the scalar expressions (the compiler vectorises it where it can).
 */
#if defined(__SSE2__) && !defined(DW_NO_SSE2) /* -DDW_NO_SSE2: the portable path, for tests */
#include <emmintrin.h>
typedef __m128d pair;
static inline pair pair_of(double lo, double hi) { return _mm_set_pd(hi, lo); }
static inline pair pair_load(const double *p) { return _mm_loadu_pd(p); }
static inline void pair_store(double *p, pair a) { _mm_storeu_pd(p, a); }
static inline pair pair_add(pair a, pair b) { return _mm_add_pd(a, b); }
static inline pair pair_min(pair a, pair b) { return _mm_min_pd(a, b); } /* a < b ? a : b */
static inline pair pair_max(pair a, pair b) { return _mm_max_pd(a, b); } /* a > b ? a : b */
/* lane-wise v <= 0 ? t : old */
static inline pair pair_zero_at(pair v, pair t, pair old) {
    pair m = _mm_cmple_pd(v, _mm_setzero_pd());
    return _mm_or_pd(_mm_and_pd(m, t), _mm_andnot_pd(m, old));
}
/* bit j set when lane j of a > b (resp. a <= b) */
static inline int pair_gt(pair a, pair b) { return _mm_movemask_pd(_mm_cmpgt_pd(a, b)); }
static inline int pair_le(pair a, pair b) { return _mm_movemask_pd(_mm_cmple_pd(a, b)); }
#else
typedef struct { double v[2]; } pair;
static inline pair pair_of(double lo, double hi) { pair r = {{lo, hi}}; return r; }
static inline pair pair_load(const double *p) { return pair_of(p[0], p[1]); }
static inline void pair_store(double *p, pair a) { p[0] = a.v[0]; p[1] = a.v[1]; }
static inline pair pair_add(pair a, pair b) { return pair_of(a.v[0] + b.v[0], a.v[1] + b.v[1]); }
static inline pair pair_min(pair a, pair b) { return pair_of(MIN(a.v[0], b.v[0]), MIN(a.v[1], b.v[1])); }
static inline pair pair_max(pair a, pair b) { return pair_of(MAX(a.v[0], b.v[0]), MAX(a.v[1], b.v[1])); }
static inline pair pair_zero_at(pair v, pair t, pair old) {
    return pair_of(v.v[0] <= 0.0 ? t.v[0] : old.v[0], v.v[1] <= 0.0 ? t.v[1] : old.v[1]);
}
static inline int pair_gt(pair a, pair b) { return (a.v[0] > b.v[0]) | ((a.v[1] > b.v[1]) << 1); }
static inline int pair_le(pair a, pair b) { return (a.v[0] <= b.v[0]) | ((a.v[1] <= b.v[1]) << 1); }
#endif

#define NCUSUM 6
#define SHAPE 6
#define MAXEDGES 7 /* shape bins: at most 8 (baseline quantile edges, detectors/shape.py) */
#define MAXBINS (MAXEDGES + 1)
/*
 * The loop runs in blocks of BLOCK samples, in three passes: (1) transform and local level, (2) the
 * tail CUSUMs' increments, (3) everything else, stopping where the monitor must. Why pass 2 is apart:
 * a tail increment costs an exp and a log, but only for the ~10-50 % of samples beyond a tail
 * threshold. Inline, that was an unpredictable branch per tail and a library call that spills every
 * live register of the big loop; apart, the samples beyond the threshold are listed without a branch
 * and the calls run in a loop that holds almost nothing. Pass 1 may run ahead of a stop (it keeps the
 * level after each sample, so the state is exactly that of the sample the loop stopped at), and its
 * work past the stop is discarded: at most one block, once per event.
 */
#define BLOCK 256

static inline double tail_llr(double r, double t, double log_zeta, double xi, double sigma, double eps,
                              double beta) {
    /* log p from the GPD (one log1p), then p^(beta-1) = exp((beta-1) log p): two transcendental
       calls fewer than pow(pow(...)) */
    double z = (r - t) / sigma;
    double logp = xi > 1e-9 ? log_zeta - log1p(xi * z) / xi : log_zeta - z;
    if (logp < -690.0) logp = -690.0; /* p >= 1e-300 */
    if (logp > 0.0) logp = 0.0;
    return log(1.0 - eps + eps * beta * exp((beta - 1.0) * logp));
}

static inline double chi2_two_sample(const int64_t *obs, const int64_t *base, int nb) {
    double w = 0.0, n = 0.0, out = 0.0;
    for (int j = 0; j < nb; j++) { w += (double)obs[j]; n += (double)base[j]; }
    for (int j = 0; j < nb; j++) {
        double num = (double)obs[j] * n - (double)base[j] * w;
        double den = (double)(obs[j] + base[j]);
        if (den < 1.0) den = 1.0;
        out += num * num / den;
    }
    double d = w * n;
    return out / (d < 1.0 ? 1.0 : d);
}

/*
 * run(x, ts, P, S, prof, pacc, edges, base, counts, mode, limit) -> (used, code, detector)
 *   mode 0: Stable -- stop after the first sample whose statistic exceeds its threshold
 *           (code 1, detector = its index: 0..5 CUSUMs, 6 shape);
 *   mode 1: Drifting -- statistics capped at P_CAP x threshold; stop after the sample that
 *           completes P_REC consecutive normal samples (code 2);
 *   otherwise stop after `limit` samples or at the end (code 0).
 */
static PyObject *run(PyObject *self, PyObject *args) {
    Py_buffer bx, bts, bp, bs, bprof, bpacc, bedges, bbase, bcounts;
    PyObject *ots;
    int mode;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "y*Oy*w*y*w*y*y*w*in", &bx, &ots, &bp, &bs, &bprof, &bpacc, &bedges,
                          &bbase, &bcounts, &mode, &limit))
        return NULL;
    int have_ts = ots != Py_None;
    if (bp.len < (Py_ssize_t)(P_SIZE * sizeof(double)) || bs.len < (Py_ssize_t)(S_SIZE * sizeof(double))) {
        PyBuffer_Release(&bx); PyBuffer_Release(&bp); PyBuffer_Release(&bs); PyBuffer_Release(&bprof);
        PyBuffer_Release(&bpacc); PyBuffer_Release(&bedges); PyBuffer_Release(&bbase);
        PyBuffer_Release(&bcounts);
        PyErr_SetString(PyExc_ValueError, "kernel: parameter or state array too short");
        return NULL;
    }
    if (have_ts && PyObject_GetBuffer(ots, &bts, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&bx); PyBuffer_Release(&bp); PyBuffer_Release(&bs); PyBuffer_Release(&bprof);
        PyBuffer_Release(&bpacc); PyBuffer_Release(&bedges); PyBuffer_Release(&bbase);
        PyBuffer_Release(&bcounts);
        return NULL;
    }
    const double *x = bx.buf, *ts = have_ts ? bts.buf : NULL, *P = bp.buf, *prof = bprof.buf;
    const double *edges = bedges.buf;
    const int64_t *base = bbase.buf;
    double *S = bs.buf, *pacc = bpacc.buf;
    int64_t *counts = bcounts.buf;
    Py_ssize_t n = bx.len / (Py_ssize_t)sizeof(double);
    if (limit < n) n = limit;
    const int nbins = (int)P[P_NBINS], nedges = (int)P[P_NEDGES], nb = nedges + 1;
    if (nedges < 0 || nedges > MAXEDGES) {
        PyBuffer_Release(&bx); PyBuffer_Release(&bp); PyBuffer_Release(&bs); PyBuffer_Release(&bprof);
        PyBuffer_Release(&bpacc); PyBuffer_Release(&bedges); PyBuffer_Release(&bbase);
        PyBuffer_Release(&bcounts);
        if (have_ts) PyBuffer_Release(&bts);
        PyErr_SetString(PyExc_ValueError, "shape test: at most 7 bin edges");
        return NULL;
    }
    const double period = P[P_PERIOD];
    const int use_prof = nbins > 0 && have_ts && period > 0.0;
    const double a = P[P_A], b = P[P_B], lo = P[P_LO], hi = P[P_HI];
    const int use_log = P[P_LOG] != 0.0;
    const double floor_ = P[P_FLOOR], lam = P[P_LAM], phi = P[P_PHI], phiden = P[P_PHIDEN];
    const double k = P[P_K], kup = P[P_KUP], kdn = P[P_KDN];
    const double *h = P + P_H0;
    const double eps = P[P_EPS], beta = P[P_BETA], body_up = P[P_BODY_UP], body_dn = P[P_BODY_DN];
    const int use_tail = h[4] > 0.0;
    const int step = (int)P[P_STEP];
    const double crit = P[P_CRIT], cap = P[P_CAP];
    const int rec = (int)P[P_REC];
    const double inv_phiden = 1.0 / phiden;
    const double tu_t = P[P_TU_T], tu_z = log(P[P_TU_ZETA]), tu_xi = P[P_TU_XI], tu_s = P[P_TU_SIGMA];
    const double td_t = P[P_TD_T], td_z = log(P[P_TD_ZETA]), td_xi = P[P_TD_XI], td_s = P[P_TD_SIGMA];
    /* per-detector limits as locals (no aliasing with the state arrays): alarm level, the cap while
       Drifting, the recovery level; a detector that is off (threshold 0) never alarms, is never capped
       and always counts as normal */
    double alarm_at[NCUSUM], capped_at[NCUSUM], normal_at[NCUSUM], inc_cap[NCUSUM];
    for (int j = 0; j < NCUSUM; j++) {
        int on = h[j] > 0.0;
        alarm_at[j] = on ? h[j] : INFINITY;
        capped_at[j] = on && mode == 1 ? cap * h[j] : INFINITY;
        normal_at[j] = on ? h[j] / 2.0 : INFINITY;
        /* one value is never a drift: a tail increment is capped at half the threshold */
        inc_cap[j] = j >= 4 && on ? 0.5 * h[j] : INFINITY;
    }
    const double shape_alarm = crit > 0.0 ? crit : INFINITY, shape_normal = crit / 2.0;
    int64_t *cur = counts, *prev = counts + nb;
    int64_t window[MAXBINS];
    double ed[MAXEDGES]; /* the edges, padded with +inf: a fixed number of branch-free comparisons */
    for (int j = 0; j < MAXEDGES; j++) ed[j] = j < nedges ? edges[j] : INFINITY;
    /* the CUSUMs as pairs (see pair above): lanes (0, 1), (2, 3), (4, 5) */
    pair s01 = pair_load(S + S_S0), s23 = pair_load(S + S_S2), s45 = pair_load(S + S_S4);
    pair lz01 = pair_load(S + S_LZ0), lz23 = pair_load(S + S_LZ2), lz45 = pair_load(S + S_LZ4);
    const pair cap01 = pair_load(inc_cap), cap23 = pair_load(inc_cap + 2), cap45 = pair_load(inc_cap + 4);
    const pair top01 = pair_load(capped_at), top23 = pair_load(capped_at + 2);
    const pair top45 = pair_load(capped_at + 4);
    const pair al01 = pair_load(alarm_at), al23 = pair_load(alarm_at + 2), al45 = pair_load(alarm_at + 4);
    const pair no01 = pair_load(normal_at), no23 = pair_load(normal_at + 2);
    const pair no45 = pair_load(normal_at + 4);
    const pair zero = pair_of(0.0, 0.0);
    double m = S[S_M], uprev = S[S_UPREV], eprev = S[S_EPREV], t = S[S_T];
    int haveprev = S[S_HAVEPREV] != 0.0;
    double normal = S[S_NORMAL], filled = S[S_FILLED], shstat = S[S_SHSTAT];
    double sn = S[S_SLOW_N], sse = S[S_SLOW_SE], ssee = S[S_SLOW_SEE], ssd = S[S_SLOW_SD];
    /* the local level follows while Stable, and while Drifting too when P_FOLLOW (a wandering stream's
       level moves at its own pace whatever happens; not when the old baseline must be kept) */
    const int follow = lam > 0.0 && (mode == 0 || P[P_FOLLOW] != 0.0);
    Py_ssize_t i = 0;
    int code = 0, det = -1;
    /* per-block scratch (BLOCK samples: ~12 kB, in L1) */
    double U[BLOCK], R[BLOCK], RAW[BLOCK], M[BLOCK], I4[BLOCK], I5[BLOCK];
    int BIN[BLOCK], TAIL[BLOCK];
    Py_BEGIN_ALLOW_THREADS  /* nothing below touches a Python object: the sidecar's loop runs on */
    while (i < n && code == 0) {
        const int len = n - i < BLOCK ? (int)(n - i) : BLOCK;
        const double *xb = x + i;
        /* pass 1: the transform and the local level (m depends on the values only) */
        for (int q = 0; q < len; q++) {
            double y = xb[q];
            if (use_log) y = log(y > floor_ ? y : floor_);
            int bin = 0;
            if (use_prof) {
                double ph = fmod(ts[i + q], period);
                if (ph < 0) ph += period;
                bin = (int)(ph / period * nbins);
                if (bin >= nbins) bin = nbins - 1;
                if (bin < 0) bin = 0;
                y = (y - prof[bin]) / prof[nbins + bin];
            }
            double raw = a * y + b;                        /* standardised, unclipped */
            double u = MIN(MAX(raw - m, lo), hi);          /* level-adjusted, Huber-clipped around the level */
            U[q] = u;
            R[q] = raw - m;                                /* level-adjusted, unclipped: the tails' input */
            RAW[q] = raw;
            BIN[q] = bin;
            if (follow) m += lam * u;
            M[q] = m;                                      /* the level after sample q */
        }
        /* pass 2: the tail increments -- the body value everywhere, then the tail probability only for
           the samples beyond a tail threshold, found by branch-free compaction (see BLOCK) */
        if (use_tail) {
            int nt = 0;
            for (int q = 0; q < len; q++) { I4[q] = body_up; TAIL[nt] = q; nt += R[q] > tu_t; }
            for (int j = 0; j < nt; j++) I4[TAIL[j]] = tail_llr(R[TAIL[j]], tu_t, tu_z, tu_xi, tu_s, eps, beta);
            nt = 0;
            for (int q = 0; q < len; q++) { I5[q] = body_dn; TAIL[nt] = q; nt += -R[q] > td_t; }
            for (int j = 0; j < nt; j++) I5[TAIL[j]] = tail_llr(-R[TAIL[j]], td_t, td_z, td_xi, td_s, eps, beta);
        } else {
            for (int q = 0; q < len; q++) I4[q] = I5[q] = -1.0;
        }
        /* pass 3: prewhitening, the CUSUMs, the shape test, the stop */
        int q = 0;
        for (; q < len; q++) {
            const double u = U[q];
            double e = haveprev ? (u - phi * uprev) * inv_phiden : u;
            double d = haveprev ? fabs(e - eprev) * 0.7071067811865476 : 0.0;
            uprev = u; eprev = e; haveprev = 1;
            /* Cusum(direction -1) on |d| with k = KDN: S += -d - KDN. Per lane: v = S + min(inc, inc_cap);
               the last zero moves to t where v <= 0; S = min(max(v, 0), cap) */
            const pair tt = pair_of(t, t);
            pair v01 = pair_add(s01, pair_min(pair_of(e - k, -e - k), cap01));
            pair v23 = pair_add(s23, pair_min(pair_of(d - kup, -kdn - d), cap23));
            pair v45 = pair_add(s45, pair_min(pair_of(I4[q], I5[q]), cap45));
            lz01 = pair_zero_at(v01, tt, lz01);
            lz23 = pair_zero_at(v23, tt, lz23);
            lz45 = pair_zero_at(v45, tt, lz45);
            s01 = pair_min(pair_max(v01, zero), top01);
            s23 = pair_min(pair_max(v23, zero), top23);
            s45 = pair_min(pair_max(v45, zero), top45);
            const int over = pair_gt(s01, al01) | pair_gt(s23, al23) | pair_gt(s45, al45);
            /* shape: windows of 2 x step overlapping by half, evaluated at every completed step */
            int step_done = 0;
            if (step > 0) {
                int bi = (e > ed[0]) + (e > ed[1]) + (e > ed[2]) + (e > ed[3]) + (e > ed[4]) + (e > ed[5]) +
                         (e > ed[6]); /* number of edges below e */
                cur[bi] += 1;
                filled += 1.0;
                if (filled >= step) {
                    for (int j = 0; j < nb; j++) window[j] = cur[j] + prev[j];
                    shstat = chi2_two_sample(window, base, nb);
                    for (int j = 0; j < nb; j++) { prev[j] = cur[j]; cur[j] = 0; }
                    filled = 0.0;
                    step_done = 1;
                }
            }
            t += 1.0;
            if (mode == 0) {
                sn += 1.0; sse += e; ssee += e * e; ssd += d;
                if (use_prof) { pacc[BIN[q]] += RAW[q]; pacc[nbins + BIN[q]] += 1.0; }
                if (over || (step_done && shstat > shape_alarm)) { /* rare: find the strongest */
                    double s[NCUSUM], best = 1.0;
                    pair_store(s, s01); pair_store(s + 2, s23); pair_store(s + 4, s45);
                    for (int j = 0; j < NCUSUM; j++)
                        if (s[j] > alarm_at[j] && s[j] / h[j] > best) { best = s[j] / h[j]; det = j; }
                    if (step_done && shstat > shape_alarm && shstat / crit > best) det = SHAPE;
                    code = 1; q++; break;
                }
            } else {
                const int ok = shstat <= shape_normal &&
                               (pair_le(s01, no01) & pair_le(s23, no23) & pair_le(s45, no45)) == 3;
                normal = ok ? normal + 1.0 : 0.0;
                if (normal >= rec) { code = 2; normal = 0.0; q++; break; }
            }
        }
        m = M[q - 1]; /* the level after the last sample used (pass 1 ran ahead to the block's end) */
        i += q;
    }
    Py_END_ALLOW_THREADS
    pair_store(S + S_S0, s01); pair_store(S + S_S2, s23); pair_store(S + S_S4, s45);
    pair_store(S + S_LZ0, lz01); pair_store(S + S_LZ2, lz23); pair_store(S + S_LZ4, lz45);
    S[S_M] = m; S[S_UPREV] = uprev; S[S_EPREV] = eprev; S[S_HAVEPREV] = haveprev; S[S_T] = t;
    S[S_NORMAL] = normal; S[S_FILLED] = filled; S[S_SHSTAT] = shstat;
    S[S_SLOW_N] = sn; S[S_SLOW_SE] = sse; S[S_SLOW_SEE] = ssee; S[S_SLOW_SD] = ssd;
    PyBuffer_Release(&bx); PyBuffer_Release(&bp); PyBuffer_Release(&bs); PyBuffer_Release(&bprof);
    PyBuffer_Release(&bpacc); PyBuffer_Release(&bedges); PyBuffer_Release(&bbase);
    PyBuffer_Release(&bcounts);
    if (have_ts) PyBuffer_Release(&bts);
    return Py_BuildValue("nii", i, code, det);
}

static PyMethodDef methods[] = {
    {"run", run, METH_VARARGS, "Fused per-sample loop of the numeric monitor (see kernel.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernel", NULL, -1, methods};

PyMODINIT_FUNC PyInit__kernel(void) { return PyModule_Create(&module); }
