/**
 * deepvision's public API: what graph files import (`import { nn, F, defineModel } from 'deepvision'`) and what
 * tools build on. Data flows DSL -> graph IR -> (autodiff) -> artifacts -> runtime -> export.
 */
export * as F from './dsl/functional';
export { GraphBuilder, GraphBuildError, activeBuilder } from './dsl/builder';
export type { BuildMode, ModuleCall } from './dsl/builder';
export { Tensor } from './dsl/builder';
export * as nn from './nn';
export * as init from './nn/init';
export { defineModel, resolveConfig } from './model/definition';
export type { Config, ConfigValue, InputSpec, ModelDefinition } from './model/definition';
export { buildModel } from './model/build';
export type { BuildOptions, BuiltModel, ParameterInfo } from './model/build';
export { formatSummary } from './model/summary';
export * as losses from './dsl/losses';
/** The id of `<pad>` in every caption vocabulary: captioners mask and embed padding by it. */
export { PAD as PAD_TOKEN } from './portable/vocabulary';
export { gradients, addGradientOutputs, GradientError } from './autodiff/gradients';
export { gradCheck, checkGradients, checkGradientGraph } from './runtime/gradcheck';
export type { GradCheckReport, GradCheckOptions, GradCheckInput } from './runtime/gradcheck';
export { buildTrainingGraph } from './model/training-graph';
export type { TrainingGraph, TrainingGraphOptions } from './model/training-graph';
export { readModelFile, decodeModel } from './onnx/read';
export { encodeModel, writeModelFile } from './onnx/write';
export { OnnxFormatError } from './onnx/errors';
export { TensorData } from './ir/tensor';
export { Graph, Node, Value } from './ir/graph';
export type { Model } from './ir/model';
export type { DType } from './ir/dtype';
export type { Dim, Shape } from './ir/shape';
export { Rng } from './util/rng';
