/** Curve charts: what the panels and the subtitle say for classifiers and captioners (rendering: sweep.test's plot CLI). */
import { curvesSpec, RunCurve } from '../src/plot/charts';

const epochs = (extra: (e: number) => Partial<RunCurve['metrics'][number]>) => [1, 2, 3].map((epoch) => ({ epoch, trainLoss: 1 / epoch, valLoss: 1.2 / epoch, valTop1: 0.2 * epoch, ...extra(epoch) }));

interface Spec {
  title: { subtitle: string };
  data: { values: { metric: string; split: string; value: number }[] };
  hconcat: { title: string }[];
}

test('classifier curves: loss and top-1 panels; the subtitle names the training sample only when the runs measured one', () => {
  const withSample = curvesSpec([{ run: 'a', metrics: epochs((e) => ({ trainTop1: 0.25 * e })) }], 'a') as unknown as Spec;
  expect(withSample.hconcat.map((p) => p.title)).toEqual(['loss', 'top-1 accuracy']);
  expect(withSample.title.subtitle).toContain('eval mode on a fixed training sample');
  const without = curvesSpec([{ run: 'b', metrics: epochs(() => ({})) }], 'b') as unknown as Spec;
  expect(without.title.subtitle).not.toContain('sample');
  expect(without.data.values.filter((v) => v.split === 'train').map((v) => v.metric)).toEqual(['loss', 'loss', 'loss']);
});

test('captioner curves: next-word top-1 and a BLEU-4 panel from the validation BLEU', () => {
  const spec = curvesSpec([{ run: 'captioner', metrics: epochs((e) => ({ valBleu: [0.5, 0.3, 0.2, 0.05 * e] })) }], 'captioner') as unknown as Spec;
  expect(spec.hconcat.map((p) => p.title)).toEqual(['loss', 'next-word top-1', 'BLEU-4']);
  expect(spec.data.values.filter((v) => v.metric === 'BLEU-4').map((v) => Number(v.value.toFixed(2)))).toEqual([0.05, 0.1, 0.15]);
});
