/**
 * A budget of work in flight (pixels being decoded, bytes being read): callers wait until what they ask for fits
 * beside what others hold, so memory is bounded by the budget rather than by how many callers run at once. One
 * request larger than the whole budget runs alone.
 */
export class WorkBudget {
  private held = 0;
  private readonly waiting: { amount: number; start: () => void }[] = [];

  constructor(readonly capacity: number) {}

  /** Waits until `amount` fits, holds it while `work` runs, and gives it back however `work` ends. */
  async run<T>(amount: number, work: () => Promise<T>): Promise<T> {
    await this.acquire(amount);
    try {
      return await work();
    } finally {
      this.release(amount);
    }
  }

  private acquire(amount: number): Promise<void> {
    if (this.fits(amount) && this.waiting.length === 0) {
      this.held += amount;
      return Promise.resolve();
    }
    return new Promise((start) => this.waiting.push({ amount, start }));
  }

  private fits(amount: number): boolean {
    return this.held === 0 || this.held + amount <= this.capacity;
  }

  private release(amount: number): void {
    this.held -= amount;
    // First come, first served: a large request is not starved by small ones behind it.
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.amount)) {
      const next = this.waiting.shift()!;
      this.held += next.amount;
      next.start();
    }
  }
}
