/** Layers, as in PyTorch's torch.nn. */
export { Module } from './module';
export { Buffer, Parameter } from './parameter';
export {
  AvgPool2d, BatchNorm2d, Conv2d, Dropout, Embedding, Flatten, GlobalAvgPool, Identity, Linear, MaxPool2d, ReLU,
  Sequential, Sigmoid, Tanh,
} from './layers';
export { OnnxModule } from './onnx-module';
export type { OnnxModuleOptions } from './onnx-module';
export { GRU, GRUCell, LSTM, LSTMCell } from './recurrent';
export type { GRUOutput, LSTMForwardOptions, LSTMOutput, RecurrentForwardOptions, RecurrentOptions } from './recurrent';
export { AdditiveAttention } from './attention';
export type { AdditiveAttentionOptions, AttentionOutput } from './attention';
