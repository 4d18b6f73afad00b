import * as fs from 'node:fs';
import referenceCnn from '../graphs/reference-cnn';
import { buildTrainingGraph } from '../src/model/training-graph';
import { modelForCpu } from '../src/runtime/nchwc';
(async () => {
  const g = buildTrainingGraph(referenceCnn, { config: { imageSize: 32, numClasses: 10 } });
  fs.writeFileSync(process.argv[2]!, (await modelForCpu(g.model)).bytes);
})();
