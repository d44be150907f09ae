"""Per-element pure functions: the distributions, the special functions they need, rounding.

Distribution codes and parameter layouts shared by every backend. ``params`` is a float64
vector of ``N_PARAMS`` values, prepared once per call by ``fastinit.samplers`` (the truncated
normal's by ``truncnormal_params``):

==================  ========================================================================
code                params
==================  ========================================================================
UNIFORM             low, high - low, lo, hi                 (lo/hi: the clamp interval)
NORMAL              mean, std, lo, hi
TRUNCNORM           mean, std, lo, hi, Phi(alpha), Q(beta), mass of [alpha, m], mass total
TRUNCNORM_CENTRAL   as TRUNCNORM, when Phi(alpha), Q(beta) >= 0.0018 (same values, faster)
TRUNCNORM_TAIL      mean, std, lo, hi, sign, log Q(alpha'), Q(beta') / Q(alpha')
==================  ========================================================================
"""

UNIFORM = 0
NORMAL = 1
TRUNCNORM = 2
TRUNCNORM_TAIL = 3
TRUNCNORM_CENTRAL = 4
N_PARAMS = 8
