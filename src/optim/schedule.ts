/** Learning-rate schedules, evaluated on the host and fed to the optimizer graph's `learning_rate` input. */
export type Schedule =
  | { kind: 'constant' }
  | { kind: 'step'; stepSize: number; gamma?: number }
  | { kind: 'cosine'; totalSteps: number; minLr?: number };

export interface ScheduleOptions {
  /** Linear warm-up from 0 over this many steps before the schedule proper. */
  warmupSteps?: number;
}

/** The learning rate of update number `step` (1-based), as torch.optim.lr_scheduler's StepLR / CosineAnnealingLR. */
export function learningRateAt(baseLr: number, step: number, schedule: Schedule, options: ScheduleOptions = {}): number {
  const warmup = options.warmupSteps ?? 0;
  if (step <= warmup) return (baseLr * step) / warmup;
  const t = step - 1 - warmup;
  switch (schedule.kind) {
    case 'constant':
      return baseLr;
    case 'step':
      return baseLr * (schedule.gamma ?? 0.1) ** Math.floor(t / schedule.stepSize);
    case 'cosine': {
      const min = schedule.minLr ?? 0;
      // The last step (totalSteps) gets minLr, as CosineAnnealingLR with T_max = totalSteps - 1 stepped per update.
      const span = Math.max(1, schedule.totalSteps - warmup - 1);
      return min + ((baseLr - min) * (1 + Math.cos((Math.PI * Math.min(t, span)) / span))) / 2;
    }
  }
}
