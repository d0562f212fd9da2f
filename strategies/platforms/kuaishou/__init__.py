"""The Kuaishou (快手电商开放平台) channel: signing, push decryption, the thin API client, the
mapping to ``AfterSaleIn``, the error mapping, and a fake platform (PLATFORMS.md,
docs/platforms/kuaishou.md)."""
