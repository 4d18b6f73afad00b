/**
 * What the browser tests reach through `window.deepvisionTeach` (installed only on `teach.html?test=1`): one
 * training update of a fresh head or of the fresh whole model on a given batch (to compare with Node's update on
 * the same batch and state), the last training set's rows, and the taught model's state. Each goes through the
 * same bundle, trainer and TrainingStep code as the page's Train.
 */
import type { FeatureSet, TeachTrainer } from '../../../src/portable/teach-session';
import type { TeachBundle } from './bundle';
import { Ort } from './runtime';

interface StepRequest {
  /** A head's class count, or 'whole' for the bundle's whole model (then `features` are preprocessed images). */
  classes: number | 'whole';
  features: number[];
  labels: number[];
  learningRate: number;
  /** Update number (1-based; Adam's bias correction depends on it). */
  step: number;
  /** Parameters and optimizer slots to start from, by state name (default: the bundle's initial values). */
  state?: Record<string, number[]>;
  /** Seed of the update's dropout noise (default 0). */
  seed?: number;
}

const plain = (state: Map<string, { data: unknown }>) => Object.fromEntries([...state].map(([name, t]) => [name, Array.from(t.data as Float32Array)]));

export function installTestHooks(bundle: TeachBundle, taught: () => TeachTrainer | undefined, lastSet: () => FeatureSet | undefined): void {
  (window as unknown as Record<string, unknown>).deepvisionTeach = {
    card: bundle.card,
    async step(r: StepRequest): Promise<{ loss: number; state: Record<string, number[]> }> {
      const trainer: TeachTrainer = r.classes === 'whole' ? (await bundle.wholeTrainer())! : await bundle.trainer(bundle.head(r.classes)!);
      // A fresh trainer per call: its sessions are released once the result is read out.
      try {
        const width = r.classes === 'whole' ? bundle.imageSize : bundle.card.features;
        for (const [name, values] of Object.entries(r.state ?? {})) {
          const old = trainer.state.get(name);
          if (old === undefined) throw new Error(`the head has no state '${name}'`);
          trainer.state.set(name, new Ort.Tensor('float32', Float32Array.from(values), old.dims));
        }
        const set: FeatureSet = { features: Float32Array.from(r.features), labels: Int32Array.from(r.labels), width };
        const batch = trainer.batch(set, r.labels.map((_, i) => i), { step: r.step, seed: r.seed ?? 0 });
        const loss = await trainer.step.run(trainer.state, batch, r.learningRate, r.step);
        return { loss: (loss.data as Float32Array)[0]!, state: plain(trainer.state) };
      } finally {
        await trainer.release();
      }
    },
    trainingSet(): { features: number[]; labels: number[] } | undefined {
      const set = lastSet();
      return set && { features: Array.from(set.features), labels: Array.from(set.labels) };
    },
    taughtState(): Record<string, number[]> | undefined {
      const trainer = taught();
      return trainer && plain(trainer.state);
    },
  };
}
