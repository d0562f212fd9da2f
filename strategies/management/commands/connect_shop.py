"""python manage.py connect_shop CODE --platform kuaishou|douyin|generic ... (PLATFORMS.md
"Channels"): connects a shop to its marketplace app; ``--platform generic`` goes back.

Secrets are sealed as they are stored and never printed again: the command prints hints only.
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from strategies.models import Platform, Shop
from strategies.services.channels import SIGN_METHODS, Credentials, connect_shop


class Command(BaseCommand):
    help = (
        "Connects a shop to Kuaishou or Douyin (its open-platform app's credentials, stored "
        "encrypted), or back to the generic API with --platform generic."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("code")
        parser.add_argument("--platform", required=True, choices=Platform.values)
        parser.add_argument("--app-key", default="")
        parser.add_argument("--app-secret", default="")
        parser.add_argument("--sign-secret", default="")
        parser.add_argument("--message-key", default="")
        parser.add_argument("--sign-method", default="", choices=["", *SIGN_METHODS])
        parser.add_argument("--access-token", default="")
        parser.add_argument("--refresh-token", default="")
        parser.add_argument("--expires-in", type=int, default=None)
        parser.add_argument("--refresh-expires-in", type=int, default=None)
        parser.add_argument("--open-id", default="", help="Kuaishou: the merchant's openId")
        parser.add_argument("--shop-id", default="", help="Douyin: the shop id")
        parser.add_argument("--api-base", default="")
        parser.add_argument("--return-address-id", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        shop = Shop.objects.filter(code=options["code"]).first()
        if shop is None:
            raise CommandError(f"Unknown shop {options['code']!r}.")
        platform = options["platform"]
        if options["open_id"] and platform != Platform.KUAISHOU:
            raise CommandError("--open-id is for --platform kuaishou.")
        if options["shop_id"] and platform != Platform.DOUYIN:
            raise CommandError("--shop-id is for --platform douyin.")
        credentials = Credentials(
            app_key=options["app_key"],
            app_secret=options["app_secret"],
            sign_secret=options["sign_secret"],
            message_key=options["message_key"],
            access_token=options["access_token"],
            refresh_token=options["refresh_token"],
            sign_method=options["sign_method"],
            expires_in=options["expires_in"],
            refresh_expires_in=options["refresh_expires_in"],
            merchant_id=options["open_id"] or options["shop_id"],
            api_base=options["api_base"],
            return_address_id=options["return_address_id"],
        )
        try:
            row = connect_shop(shop=shop, platform=platform, credentials=credentials)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        if row.platform == Platform.GENERIC:
            self.stdout.write(f"Shop {shop.code} speaks the generic API again.")
            return
        self.stdout.write(
            f"Shop {shop.code} connected to {row.platform} (app key {row.app_key_hint}); push "
            f"URL /platforms/{row.platform}/push/<app key>."
        )
