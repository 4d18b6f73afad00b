/** SIGINTs closer together than this are one Ctrl-C delivered twice. */
const SAME_SIGNAL_MS = 500;

export interface StopRequest {
  /** Whether Ctrl-C was pressed: the trainer saves a checkpoint after the current batch and stops. */
  requested: () => boolean;
  /** Stops listening. */
  dispose: () => void;
}

/**
 * Listens for Ctrl-C during training: the first asks for a clean stop (after `onFirst`, which clears the progress
 * bar, it says so); a second one exits at once with 130.
 */
export function stopOnCtrlC(onFirst: () => void): StopRequest {
  let stopRequested = false;
  let firstSigint = 0;
  const onSigint = () => {
    // One Ctrl-C can arrive twice: from the terminal and forwarded by the launcher (bin/deepvision.js).
    if (stopRequested && Date.now() - firstSigint < SAME_SIGNAL_MS) return;
    if (stopRequested) process.exit(130);
    stopRequested = true;
    firstSigint = Date.now();
    onFirst();
    console.error('\nStopping: saving a checkpoint after this batch (Ctrl-C again to quit at once)...');
  };
  process.on('SIGINT', onSigint);
  return { requested: () => stopRequested, dispose: () => process.off('SIGINT', onSigint) };
}
