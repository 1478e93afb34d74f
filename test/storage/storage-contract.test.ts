// Proves that MemoryStorage and WalStorage both meet the Storage contract (see
// storage-contract.ts), by running the same tests against each: WalStorage once as is and
// once closed and reopened from its directory between every step.
import { MemoryStorage, WalStorage } from '../../src/storage/index.ts';
import { freshDir, tempDir } from './helpers.ts';
import { storageContract } from './storage-contract.ts';

const dir = tempDir();

storageContract('MemoryStorage', {
  make: () => new MemoryStorage(),
  reopen: (s) => s,
  close: () => {},
});

storageContract('WalStorage', {
  make: () => WalStorage.open(freshDir(dir)),
  reopen: (s) => s,
  close: (s) => s.close(),
});

storageContract('WalStorage, reopened between steps', {
  make: () => WalStorage.open(freshDir(dir), { segmentSizeBytesMax: 4096 }),
  reopen: (s) => {
    s.close();
    return WalStorage.open(s.dir, { segmentSizeBytesMax: 4096 });
  },
  close: (s) => s.close(),
});
