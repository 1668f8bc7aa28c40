"""Federation transport: X-Matrix request authentication, the signed outbound client, server discovery."""
