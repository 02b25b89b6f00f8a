/**
 * exp(x) for x <= 0, about three times faster than Math.exp in V8 and accurate to ~1e-8 relative, well below
 * float32 resolution. Sampling evaluates it for every vocabulary entry of every row at every step (softmax and
 * logprobs), where Math.exp alone cost more than a fifth of a decode step at batch 64.
 */
const LOG2E = 1.4426950408889634;
const LN2 = 0.6931471805599453;
const BIAS = 1075;
/** 2^(i - BIAS), covering every exponent a double can hold. */
const POW2 = new Float64Array(BIAS + 1);
for (let i = 0; i <= BIAS; i++) POW2[i] = Math.pow(2, i - BIAS);

export function expNonPositive(x: number): number {
  if (x < -745) return 0;
  // x = (n + r) ln 2 with |r| <= 1/2: e^x = 2^n e^(r ln 2), the second factor by its Taylor series to degree 7.
  const t = x * LOG2E;
  const n = Math.floor(t + 0.5);
  const f = (t - n) * LN2;
  const p =
    1 +
    f *
      (1 +
        f *
          (0.5 +
            f *
              (0.16666666666666666 +
                f *
                  (0.041666666666666664 +
                    f * (0.008333333333333333 + f * (0.001388888888888889 + f * 0.0001984126984126984))))));
  return p * POW2[n + BIAS];
}

/** log Σ exp(values[i]), with its maximum given. */
export function logSumExp(values: Float32Array, max: number): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += expNonPositive(values[i] - max);
  return max + Math.log(sum);
}
