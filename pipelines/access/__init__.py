"""Access: who may see which tenant and page, the SQL console's sandbox, and the audit — one package.

- `roles`   — the three roles (lanh_dao, phan_tich, ky_thuat) and the capability keys each one grants.
- `store`   — the user store (SQLite under `$TONGHOP_HOME/access/`, mode 0600): users with argon2 hashes,
              grants (user, tenant, role), saved console queries; `authenticate()` with rate limiting.
- `session` — `Session` (who, grants, chosen tenant) and its expiry (idle + absolute), no Streamlit.
- `audit`   — the append-only audit log (sign-ins, console queries) in its own SQLite file, hash-chained.
- `console` — the SQL console: one SELECT/WITH checked by DuckDB's parser, run on a locked, read-only,
              no-external-access DuckDB over the tenant's serving snapshot, with time/row/memory limits.

apps/auth.py is the Streamlit side (sign-in form, OIDC via st.login, `require()`); `tonghop users …` the CLI.
See docs/access.md.
"""
