/* sample.c: the sampling instructions of a schedule. sample_perfect_tile draws tile factors
 * that multiply exactly to a loop's extent (what split then consumes); sample_categorical
 * draws one value among weighted candidates. Both take an optional decision: a tuner fixes
 * or mutates decisions in a trace and replays it (trace.c); without one they sample from the
 * schedule's random state and record what they drew. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "schedule/schedule.h"

/* ---- Helpers --------------------------------------------------------------------------- */

/* A uniform-ish integer in [0, k) (k >= 1); the modulo bias is negligible for small k. */
static uint64_t rand_below(sch_schedule *s, uint64_t k) { return sch_rand(s) % k; }

/* A uniform double in [0, 1) from the top 53 bits. */
static double rand_unit(sch_schedule *s) { return (double)(sch_rand(s) >> 11) * 0x1.0p-53; }

/* "[a, b, c]" into buf, shortened with "..." when it does not fit: for messages. */
static const char *format_list(char *buf, size_t cap, int n, const int64_t *v) {
  size_t len = (size_t)snprintf(buf, cap, "[");
  for (int i = 0; i < n && len < cap; i++)
    len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)v[i]);
  if (len + 1 < cap) snprintf(buf + len, cap - len, "]");
  else if (cap > 4) memcpy(buf + cap - 5, "...]", 5);
  return buf;
}

/* ---- Perfect tiles --------------------------------------------------------------------- */

/* The factorization of a positive integer as (factor, exponent) pairs. Trial division stops
 * at TRIAL_LIMIT, so a cofactor left above TRIAL_LIMIT^2 may be composite; it is then kept as
 * one indivisible factor. Tiles stay perfect (they always multiply to the extent); only
 * tilings that split that cofactor are never drawn, which no real loop extent runs into.
 * Entries are pairwise coprime and at least 2, so 15 fit any int64 (2*3*5*...*53 > 2^63). */
enum { TRIAL_LIMIT = 1 << 16, MAX_PRIMES = 16 };
typedef struct factorization {
  int n;
  int64_t p[MAX_PRIMES];
  int e[MAX_PRIMES];
} factorization;

static void factorize(int64_t x, factorization *f) {
  f->n = 0;
  for (int64_t p = 2; p <= TRIAL_LIMIT && p * p <= x; p += p == 2 ? 1 : 2) {
    if (x % p) continue;
    int e = 0;
    while (x % p == 0) x /= p, e++;
    f->p[f->n] = p;
    f->e[f->n++] = e;
  }
  if (x > 1) {
    f->p[f->n] = x;
    f->e[f->n++] = 1;
  }
}

/* Walks the divisors of the factorized number (exps is a mixed-radix counter over the
 * exponents); calls back with each divisor <= bound. Returns the number of such divisors,
 * or stops at the pick-th one (0-based) and stores it in *picked. */
static int64_t divisors_upto(const factorization *f, int64_t bound, int64_t pick,
                             int64_t *picked) {
  int exps[MAX_PRIMES] = {0};
  int64_t count = 0;
  for (;;) {
    int64_t d = 1;
    for (int i = 0; i < f->n; i++)
      for (int k = 0; k < exps[i]; k++) d *= f->p[i];
    if (d <= bound) {
      if (count == pick) {
        *picked = d;
        return count;
      }
      count++;
    }
    int i = 0;
    while (i < f->n && exps[i] == f->e[i]) exps[i++] = 0;
    if (i == f->n) return count;
    exps[i]++;
  }
}

/* Draws n factors of extent (n >= 2 or extent <= bound): the innermost uniformly among the
 * divisors of extent that are <= bound, then every prime factor of what is left goes to one
 * of the n - 1 outer factors, chosen uniformly. */
static void draw_perfect_tile(sch_schedule *s, int64_t extent, int n, int64_t bound,
                              int64_t *out) {
  factorization f;
  factorize(extent, &f);
  int64_t inner = extent;
  if (n > 1) {
    int64_t ndiv = divisors_upto(&f, bound, -1, NULL);
    divisors_upto(&f, bound, (int64_t)rand_below(s, (uint64_t)ndiv), &inner);
  }
  for (int i = 0; i < n - 1; i++) out[i] = 1;
  out[n - 1] = inner;
  int64_t rest = extent / inner;
  for (int i = 0; i < f.n; i++)
    while (rest % f.p[i] == 0) {
      rest /= f.p[i];
      out[rand_below(s, (uint64_t)(n - 1))] *= f.p[i];
    }
}

/* sample_perfect_tile(loop, n, max_innermost): n factors whose product is the loop's
 * constant extent, the innermost at most max_innermost (<= 0: no bound). Outputs n INT RVs,
 * outermost first; the decision is the n factors. A given decision must have positive
 * factors multiplying to the extent and respect the bound. Inputs: [loop, n, max_innermost]. */
kiln_status sch_sample_perfect_tile(sch_schedule *s, sch_rv loop, int n, int max_innermost,
                                    const int64_t *decision, sch_rv *out) {
  static const char prim[] = "sample_perfect_tile";
  if (!s) return KILN_ERR_MISUSE;
  if (!out) return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "%s: no output array", prim);
  ir_for *f;
  kiln_status st = sch_get_for(s, prim, loop, &f);
  if (st) return st;
  const char *name = f->var->name;
  if (n < 1 || n > SCH_MAX_INST_ARGS)
    return sch_fail(s, prim, "the number of factors for loop '%s' must be between 1 and %d, "
                    "got %d", name, SCH_MAX_INST_ARGS, n);
  const ir_int_imm *ext = ir_as_int(f->extent);
  if (!ext)
    return sch_fail(s, prim, "loop '%s' has no constant extent", name);
  int64_t extent = ext->value;
  if (extent < 1)
    return sch_fail(s, prim, "loop '%s' has extent %lld; perfect tiles need at least 1", name,
                    (long long)extent);
  int64_t bound = max_innermost > 0 ? max_innermost : INT64_MAX;
  if (n == 1 && extent > bound)
    return sch_fail(s, prim, "loop '%s' of extent %lld cannot be one tile of at most %d",
                    name, (long long)extent, max_innermost);

  int64_t factors[SCH_MAX_INST_ARGS];
  if (decision) {
    char list[160];
    int64_t prod = 1;
    for (int i = 0; i < n; i++) {
      if (decision[i] < 1)
        return sch_fail(s, prim, "decision %s for loop '%s' has a factor below 1",
                        format_list(list, sizeof list, n, decision), name);
      if (prod > extent / decision[i])
        return sch_fail(s, prim, "decision %s for loop '%s' multiplies to more than its "
                        "extent %lld", format_list(list, sizeof list, n, decision), name,
                        (long long)extent);
      prod *= decision[i];
    }
    if (prod != extent)
      return sch_fail(s, prim, "decision %s for loop '%s' multiplies to %lld, not its extent "
                      "%lld", format_list(list, sizeof list, n, decision), name,
                      (long long)prod, (long long)extent);
    if (decision[n - 1] > bound)
      return sch_fail(s, prim, "decision %s for loop '%s' has innermost factor %lld above "
                      "max_innermost %d", format_list(list, sizeof list, n, decision), name,
                      (long long)decision[n - 1], max_innermost);
    memcpy(factors, decision, sizeof *factors * (size_t)n);
  } else {
    draw_perfect_tile(s, extent, n, bound, factors);
  }

  sch_rv rvs[SCH_MAX_INST_ARGS];
  for (int i = 0; i < n; i++)
    if ((rvs[i] = sch_new_int_rv(s, factors[i])) == SCH_RV_NONE) return KILN_ERR_NOMEM;
  sch_arg in[3] = {sch_arg_rv(s, loop), sch_arg_int(n), sch_arg_int(max_innermost)};
  if ((st = sch_record(s, SCH_INST_SAMPLE_PERFECT_TILE, 3, in, n, rvs, n, factors))) return st;
  memcpy(out, rvs, sizeof *rvs * (size_t)n);
  return KILN_OK;
}

kiln_status sch_apply_sample_perfect_tile(sch_schedule *s, int ninputs, const sch_arg *inputs,
                                          int ndecision, const int64_t *decision,
                                          sch_rv *outputs, int *noutputs) {
  if (ninputs != 3 || inputs[1].kind != SCH_ARG_INT || inputs[2].kind != SCH_ARG_INT)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "trace: sample_perfect_tile takes a loop, n and max_innermost");
  int64_t n = inputs[1].i, max_inner = inputs[2].i;
  if (n < 1 || n > SCH_MAX_INST_ARGS)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "trace: sample_perfect_tile: n = %lld is not between 1 and %d",
                   (long long)n, SCH_MAX_INST_ARGS);
  if (max_inner < INT32_MIN || max_inner > INT32_MAX)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "trace: sample_perfect_tile: max_innermost = %lld is out of range",
                   (long long)max_inner);
  sch_rv loop;
  kiln_status st = sch_input_rv(s, &inputs[0], SCH_RV_LOOP, &loop);
  if (st) return st;
  if (decision && ndecision != n)
    return sch_fail(s, "sample_perfect_tile", "the decision has %d factors, expected %lld",
                    ndecision, (long long)n);
  *noutputs = (int)n;
  return sch_sample_perfect_tile(s, loop, (int)n, (int)max_inner, decision, outputs);
}

/* ---- Categorical ------------------------------------------------------------------------- */

/* The most candidates an instruction can carry: [n, c..., p...] fits SCH_MAX_INST_ARGS. */
enum { MAX_CANDIDATES = (SCH_MAX_INST_ARGS - 1) / 2 };

/* sample_categorical(n, candidates, probs): one of the n candidates, drawn with the given
 * weights (probs >= 0, finite, summing to > 0; they are normalized). Output: one INT RV with
 * the candidate's value; the decision is its index, which must have a positive weight.
 * Inputs: [n, c_0 ... c_{n-1}, p_0 ... p_{n-1}]. */
kiln_status sch_sample_categorical(sch_schedule *s, int n, const int64_t *candidates,
                                   const double *probs, const int64_t *decision, sch_rv *out) {
  static const char prim[] = "sample_categorical";
  if (!s) return KILN_ERR_MISUSE;
  if (!out || (n > 0 && (!candidates || !probs)))
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "%s: missing candidates, "
                   "probabilities or output", prim);
  if (n < 1 || n > MAX_CANDIDATES)
    return sch_fail(s, prim, "the number of candidates must be between 1 and %d, got %d",
                    MAX_CANDIDATES, n);
  double sum = 0;
  for (int i = 0; i < n; i++) {
    if (!(probs[i] >= 0) || !isfinite(probs[i]))
      return sch_fail(s, prim, "probability %d of candidate %lld is %g; probabilities must be "
                      "finite and >= 0", i, (long long)candidates[i], probs[i]);
    sum += probs[i];
  }
  if (!(sum > 0) || !isfinite(sum))
    return sch_fail(s, prim, "the probabilities sum to %g; they must sum to a finite value "
                    "above 0", sum);

  int64_t index;
  if (decision) {
    index = decision[0];
    if (index < 0 || index >= n)
      return sch_fail(s, prim, "decision %lld is not a candidate index (there are %d)",
                      (long long)index, n);
    if (probs[index] == 0)
      return sch_fail(s, prim, "decision %lld picks candidate %lld, whose probability is 0",
                      (long long)index, (long long)candidates[index]);
  } else {
    /* Inverse transform on the normalized weights; the last candidate with a positive
     * weight catches rounding at the top end. */
    double target = rand_unit(s) * sum, acc = 0;
    index = -1;
    for (int i = 0; i < n; i++) {
      if (probs[i] == 0) continue;
      index = i;
      acc += probs[i];
      if (target < acc) break;
    }
  }

  sch_rv rv = sch_new_int_rv(s, candidates[index]);
  if (rv == SCH_RV_NONE) return KILN_ERR_NOMEM;
  sch_arg in[1 + 2 * MAX_CANDIDATES];
  in[0] = sch_arg_int(n);
  for (int i = 0; i < n; i++) {
    in[1 + i] = sch_arg_int(candidates[i]);
    in[1 + n + i] = sch_arg_float(probs[i]);
  }
  kiln_status st = sch_record(s, SCH_INST_SAMPLE_CATEGORICAL, 1 + 2 * n, in, 1, &rv, 1, &index);
  if (st) return st;
  *out = rv;
  return KILN_OK;
}

kiln_status sch_apply_sample_categorical(sch_schedule *s, int ninputs, const sch_arg *inputs,
                                         int ndecision, const int64_t *decision,
                                         sch_rv *outputs, int *noutputs) {
  if (ninputs < 1 || inputs[0].kind != SCH_ARG_INT || inputs[0].i < 1 ||
      inputs[0].i > MAX_CANDIDATES || ninputs != 1 + 2 * inputs[0].i)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "trace: sample_categorical takes n (1 to %d), n candidates and n "
                   "probabilities", MAX_CANDIDATES);
  int n = (int)inputs[0].i;
  int64_t cands[MAX_CANDIDATES];
  double probs[MAX_CANDIDATES];
  for (int i = 0; i < n; i++) {
    const sch_arg *c = &inputs[1 + i], *p = &inputs[1 + n + i];
    if (c->kind != SCH_ARG_INT)
      return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                     "trace: sample_categorical: candidate %d is not an integer", i);
    if (p->kind != SCH_ARG_FLOAT && p->kind != SCH_ARG_INT)
      return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                     "trace: sample_categorical: probability %d is not a number", i);
    cands[i] = c->i;
    probs[i] = p->kind == SCH_ARG_FLOAT ? p->f : (double)p->i;
  }
  if (decision && ndecision != 1)
    return sch_fail(s, "sample_categorical", "the decision has %d values, expected 1",
                    ndecision);
  *noutputs = 1;
  return sch_sample_categorical(s, n, cands, probs, decision, &outputs[0]);
}
