import { UserError } from '../util/user-error';

/** A loss that is NaN or infinite: training stops and the last good checkpoint stays as it was. */
export class TrainingError extends UserError {}
