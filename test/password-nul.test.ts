import { describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { loadSpec } from '../src/http/spec';
import { GOOD_PASSWORD, login, signedInUser, uniqueEmail, useTestApp } from './support/test-app';

const t = useTestApp();

// bcrypt stops at a NUL: each of these would make a shorter password match.
const WITH_NUL = ['\u0000'.repeat(8), 'abcdefgh\u0000abcdefgh', 'correct-horse\u0000'];

describe('passwords may not contain NUL', () => {
  test.each(WITH_NUL)(
    'when registering with %j, then 422 on the password and no account',
    async (password) => {
      const email = uniqueEmail('nul');
      const res = await request(t.app)
        .post('/api/v1/auth/register')
        .send({ email, password })
        .expect(422);
      expect(res.body.code).toBe('validation_failed');
      expect(res.body.errors).toEqual([{ path: '/body/password', message: expect.any(String) }]);
      expect(await t.sql('SELECT id FROM users WHERE email = $1', [email])).toEqual([]);
      await login(t.app, email, password.split('\u0000')[0] || '\u0000', 401);
    },
  );

  test.each(WITH_NUL)(
    'when changing the password to %j, then 422 and the old password still works',
    async (next) => {
      const { token, email } = await signedInUser(t.app);
      const res = await request(t.app)
        .post('/api/v1/auth/password')
        .set('Authorization', `Bearer ${token}`)
        .send({ current_password: GOOD_PASSWORD, new_password: next })
        .expect(422);
      expect(res.body.errors).toEqual([
        { path: '/body/new_password', message: expect.any(String) },
      ]);
      await login(t.app, email, GOOD_PASSWORD, 200);
    },
  );

  test('when the spec is read, then the shared new-password schema refuses NUL, so every operation that sets one does', () => {
    const schemas = (loadSpec().document.components as { schemas: Record<string, unknown> })
      .schemas;
    const { pattern } = schemas.NewPassword as { pattern?: string };
    expect(pattern).toBeDefined();
    const re = new RegExp(pattern!, 'u');
    expect(re.test(GOOD_PASSWORD)).toBe(true);
    for (const p of WITH_NUL) expect(re.test(p)).toBe(false);
  });
});
