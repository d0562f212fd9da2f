"""The Douyin (抖店) channel: signing v2, push ``event-sign``, the thin API client, the mapping to
``AfterSaleIn``, the error mapping, and a fake platform (PLATFORMS.md, docs/platforms/douyin.md)."""
