import { describe, expect, it } from 'vitest';
import { escapeGlob, lockKind, newLockToken } from '../../src/redis/locks.js';

describe('lock helpers', () => {
  it('tells a user lock from a group lock by the key', () => {
    expect(lockKind('digest:lock:6af5e7d3-e736-46da-bfc1-42786f2ab1c0')).toBe('user');
    expect(lockKind('digest:lock:tenant-1:group-2:2025-11-25T12')).toBe('group');
    expect(lockKind('app:lock:6af5e7d3-e736-46da-bfc1-42786f2ab1c0', 'app:lock:')).toBe('user');
  });

  it('escapes glob characters of a literal SCAN MATCH prefix', () => {
    expect(escapeGlob('p[1]*?:digest:lock:')).toBe('p\\[1\\]\\*\\?:digest:lock:');
    expect(escapeGlob('ddtest:ab12:')).toBe('ddtest:ab12:');
  });

  it('makes a fresh 128-bit token each time', () => {
    const a = newLockToken();
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(newLockToken()).not.toBe(a);
  });
});
