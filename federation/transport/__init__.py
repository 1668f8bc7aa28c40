"""Federation transport: HTTP session pool (:mod:`.sessions`), server discovery (:mod:`.discovery`),
X-Matrix request signing and authentication against a key lookup the caller passes
(:mod:`.auth`), the signed outbound client for JSON and bytes (:mod:`.client`), and the boundary's
errors (:mod:`.errors`). Imports :mod:`federation.protocol`, :mod:`federation.config` and
:mod:`federation.signing_key` only: no database, no chat."""
