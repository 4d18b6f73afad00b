import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { TeachHead, TeachWholeModel } from '../../src/portable/teach-card';
import { TeachTrainer } from '../../src/portable/teach-session';
import type { TensorClass } from '../../src/portable/training-step';

/** A Teach-mode trainer in onnxruntime-node for a head or the whole model of a bundle folder, with its sessions. */
export async function nodeTeachTrainer<M extends TeachHead | TeachWholeModel>(bundleDir: string, m: M, o: ConstructorParameters<typeof TeachTrainer>[4]) {
  const folder = path.join(bundleDir, m.folder);
  const sessions = {
    training: await ort.InferenceSession.create(path.join(folder, m.training)),
    optimizer: await ort.InferenceSession.create(path.join(folder, m.optimizer)),
    eval: await ort.InferenceSession.create(path.join(folder, m.eval)),
  };
  const init = fs.readFileSync(path.join(folder, m.init));
  const trainer = new TeachTrainer(m, sessions, init.buffer.slice(init.byteOffset, init.byteOffset + init.byteLength), ort.Tensor as unknown as TensorClass, o);
  return { trainer, sessions, release: async () => void (await Promise.all(Object.values(sessions).map((s) => s.release()))) };
}
