"""What the platform's two JSON APIs share: the force API (``diversion.api``) and the
provider API (``diversion.providers.api``) each import this package, never each other.

- ``http``: reading bodies, answering with JSON, the error body and its problems;
- ``schemas``: the shapes both APIs read and write (text types, a referral's steps and sessions, errors);
- ``tokens``: bearer tokens of forces (``dvt.``) and of providers (``dvp.``), one module for both;
- ``idempotency``: ``Idempotency-Key`` on creating calls, for either kind of token;
- ``openapi``: the one OpenAPI document, made of the parts each API registers.
"""
