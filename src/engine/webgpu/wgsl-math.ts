/**
 * WGSL exp, erf and GELU with the native kernels' polynomials (native/simd.h: vexp, verf,
 * vgelu, vgelu_grad), so both engines round alike and neither depends on a driver's exp (Mesa's
 * llvmpipe exp is only good to ~4e-6 relative).
 */
export const WGSL_MATH = /* wgsl */ `
// exp(x), relative error < 1e-7 (Cephes expf polynomial); x clamped to [-87.34, 88.38]
fn cf_exp(x0: f32) -> f32 {
  let x = min(max(x0, -87.33654), 88.37626);
  let n = round(x * 1.44269504088896341);
  var r = n * -0.693359375 + x;
  r = n * 2.12194440e-4 + r;
  var p = 1.9875691500e-4;
  p = p * r + 1.3981999507e-3;
  p = p * r + 8.3334519073e-3;
  p = p * r + 4.1665795894e-2;
  p = p * r + 1.6666665459e-1;
  p = p * r + 5.0000001201e-1;
  p = p * (r * r) + r + 1.0;
  return p * bitcast<f32>((i32(n) + 127) << 23u);
}

// erf(x), absolute error < 1.3e-7
fn cf_erf(x: f32) -> f32 {
  let s = x * x;
  var p = -0.0006013393285684288;
  p = p * s + 0.004998000804334879;
  p = p * s + -0.026770232245326042;
  p = p * s + 0.11281926929950714;
  p = p * s + -0.3761250674724579;
  p = p * s + 1.1283791065216064;
  let small = p * x;
  let t = min(abs(x), 4.0);
  var q = 1.032884370033571e-06;
  q = q * t + -1.659137342358008e-05;
  q = q * t + 9.438349661650136e-05;
  q = q * t + -2.2947016987018287e-05;
  q = q * t + -0.0030339527875185013;
  q = q * t + 0.023278165608644485;
  q = q * t + -0.1063365563750267;
  q = q * t + -0.6346375346183777;
  q = q * t + -1.1290252208709717;
  q = q * t + 9.372414933750406e-05;
  let big = 1.0 - cf_exp(q);
  return select(select(big, -big, x < 0.0), small, abs(x) < 0.921875);
}

fn cf_gelu(u: f32) -> f32 { return u * (0.5 * (1.0 + cf_erf(u * 0.70710678118654752))); }
fn cf_gelu_grad(u: f32) -> f32 {
  let cdf = 0.5 * (1.0 + cf_erf(u * 0.70710678118654752));
  return cdf + u * (cf_exp(-0.5 * u * u) * 0.39894228040143268);
}
`;
