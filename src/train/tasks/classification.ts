import * as ort from 'onnxruntime-node';
import { checkpointClasses } from '../../checkpoint/checkpoint';
import { classNamesDifference } from '../class-names';
import { evaluate } from '../classifier-evaluation';
import { TrainingError } from '../training-error';
import type { Task } from './task';

/**
 * A classifier: one label per image, logits [batch, classes]; validation reports loss, top-1, top-5 and the
 * confusion matrix, and top-1 on a fixed sample of the training images; checkpoints record the class names.
 */
export const CLASSIFICATION: Task = {
  kind: 'classification',

  dataConfig(o) {
    if (o.captions !== undefined) throw new TrainingError(`model '${o.definition.name}' is a classifier: caption data trains captioners (models whose task is 'captioning')`);
    const classes = o.train.classNames.length;
    return [{ key: 'numClasses', value: classes, what: `${classes} classes` }];
  },

  checkModel(o, evalModel) {
    const classes = o.train.classNames.length;
    const logits = evalModel.graph.outputs.find((v) => v.name === 'logits')?.shape;
    const outputs = logits?.[logits.length - 1];
    if (logits === undefined || logits.length !== 2 || typeof outputs !== 'number') {
      throw new TrainingError(`model '${o.definition.name}' must output logits [batch, classes]; it outputs [${logits?.join(', ') ?? '?'}]`);
    }
    if (outputs !== classes) {
      throw new TrainingError(`model '${o.definition.name}' has ${outputs} outputs, but ${o.train.name} has ${classes} classes: set the model's number of outputs to ${classes} (e.g. a numClasses config key)`);
    }
    const input = evalModel.graph.inputs.find((v) => v.name === 'input')?.shape;
    const data = [o.train.channels, o.train.height, o.train.width];
    if (input !== undefined && input.slice(1).some((d, i) => typeof d === 'number' && d !== data[i])) {
      throw new TrainingError(`model '${o.definition.name}' takes input [${input.join(', ')}], but the images are [batch, ${data.join(', ')}]: set the model's image size (or --image-size) to match`);
    }
  },

  rows(o) {
    return {
      count: o.train.count,
      images: (order) => order,
      targets: (batch) => ({ labels: new ort.Tensor('int64', batch.labels, [batch.count]) }),
    };
  },

  async validate(o, run, tensors) {
    const r = await evaluate(run.sessions.evaluation, run.sessions.evalParameters, tensors, o.val, run.normalization, o.train.classNames.length, run.features);
    return { loss: r.loss, top1: r.top1, top5: r.top5, confusion: r.confusion, extra: {} };
  },

  trainSample: {
    size: (o) => Math.min(o.trainAccuracySample ?? 2000, o.train.count),
    evaluate: (run, tensors, data, classes) => evaluate(run.sessions.evaluation, run.sessions.evalParameters, tensors, data, run.normalization, classes, run.features),
  },

  checkpointMetadata: (o) => ({ 'deepvision.classes': JSON.stringify(o.train.classNames) }),

  checkResume(file, meta, o) {
    const classes = checkpointClasses(meta, file);
    if (classes === undefined) return;
    const difference = classNamesDifference(classes, o.train.classNames);
    if (difference !== undefined) throw new TrainingError(`${file} was trained on other classes than ${o.train.name} has: ${difference}; --resume continues a run on the same data`);
  },

  summaryClasses: (o) => o.train.classNames,

  extraArtifacts: () => [],
};
