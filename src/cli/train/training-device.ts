import { chooseDevice, describeChoice, DeviceChoice, DeviceRequest } from '../../runtime/device';
import { nchwcBlockSize } from '../../runtime/nchwc';
import { UserError } from '../errors';

export interface TrainingDevice {
  choice: DeviceChoice;
  /** The device line the run prints: the choice, and on the CPU how convolutions run. */
  description: string;
}

export async function chooseTrainingDevice(request: DeviceRequest, blockedConvolutions: boolean): Promise<TrainingDevice> {
  let choice;
  try {
    choice = await chooseDevice(request);
  } catch (err) {
    throw new UserError((err as Error).message);
  }
  let convolutions = '';
  if (choice.device === 'cpu') {
    const block = blockedConvolutions ? await nchwcBlockSize() : undefined;
    convolutions = block !== undefined
      ? `; convolutions on onnxruntime's channel-blocked CPU kernels (block ${block})`
      : `; convolutions as standard ONNX Conv${blockedConvolutions ? ' (no blocked kernels on this CPU)' : ''}`;
  }
  return { choice, description: describeChoice(choice) + convolutions };
}
