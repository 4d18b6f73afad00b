/**
 * Preloaded (node --require) into a CLI process to simulate a full disk: once FULL_DISK_BYTES bytes have been written
 * to files, every further fs.writeSync fails with ENOSPC, as on a full file system. (deepvision's file writes all go
 * through writeFileAtomic, which uses fs.writeSync.) Standard output and error are not counted.
 */
const fs = require('node:fs');

let left = Number(process.env.FULL_DISK_BYTES ?? 0);
const writeSync = fs.writeSync;
fs.writeSync = function (fd, data, ...rest) {
  if (fd > 2) {
    const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    if (bytes > left) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    left -= bytes;
  }
  return writeSync.call(this, fd, data, ...rest);
};
