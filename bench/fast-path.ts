/**
 * Which update path a bench measures, as the trainer chooses it on the CPU: the fused native optimizer (src/native)
 * where it is built, or with --portable (or where it is not built) the optimizer graph in onnxruntime.
 */
import { FusedOptimizer } from '../src/native/fused-optimizer';
import type { OptimizerConfig } from '../src/optim/config';
import type { ParameterSpec } from '../src/optim/optimizer-graph';

const portable = process.argv.includes('--portable');
let said = false;

/** The fused optimizer for these parameters, or undefined for the optimizer graph (the reason said once). */
export function fusedOptimizerFor(specs: readonly ParameterSpec[], config: OptimizerConfig, threads: number): FusedOptimizer | undefined {
  const fused = portable ? 'the bench was asked for the portable path (--portable)' : FusedOptimizer.create(specs, config, {}, threads);
  if (typeof fused === 'string' && !said) {
    said = true;
    console.log(`update path: the optimizer graph (${fused})`);
  } else if (typeof fused !== 'string' && !said) {
    said = true;
    console.log('update path: the fused native optimizer (--portable for the optimizer graph)');
  }
  return typeof fused === 'string' ? undefined : fused;
}
