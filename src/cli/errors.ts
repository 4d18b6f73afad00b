export { isUserFacing, UserError } from '../util/user-error';
