// Proves that test processes run with native addons disabled: any module a test imports
// that tried to load an addon would fail, so the suite passing shows ringraft is native-free.
import { describe, expect, it } from 'vitest';

describe('test processes', () => {
  it('run under --no-addons', () => {
    expect(process.execArgv).toContain('--no-addons');
    let code: unknown;
    try {
      process.dlopen({ exports: {} }, '/nonexistent/addon.node');
    } catch (error) {
      code = (error as NodeJS.ErrnoException).code;
    }
    // Without --no-addons this would be ERR_DLOPEN_FAILED (file missing).
    expect(code).toBe('ERR_DLOPEN_DISABLED');
  });
});
