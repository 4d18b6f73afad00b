import type { onnx } from 'onnx-proto';
import type { Graph } from './graph';

interface OpsetImport {
  domain: string;
  version: number;
}

/** An ONNX model: a graph plus the versions and metadata around it. */
export interface Model {
  irVersion: number;
  opsetImports: OpsetImport[];
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: number;
  docString: string;
  /** metadata_props, in file order. */
  metadata: Map<string, string>;
  graph: Graph;
  /** Model-local functions and training info are not interpreted; kept as read so that a re-write keeps them. */
  functions: onnx.IFunctionProto[];
  trainingInfo: onnx.ITrainingInfoProto[];
}

/** The versions deepvision writes for the models it builds. */
export const WRITE_IR_VERSION = 8;
export const WRITE_OPSET = 17;

export function defaultOpset(model: Model): number | undefined {
  return model.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version;
}
