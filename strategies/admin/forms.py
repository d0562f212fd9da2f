"""The strategy form of the admin, grouped as the seeds group the settings
(``STRATEGY_SETTING_GROUPS``, the one list of them).

The admin builds a subclass per request with ``atom_shop`` and ``atom_scenario`` set (see
``StrategyAdmin.get_form``); fields that do not apply to the scenario are left out of the form.
Validation is the model's (its constraints' messages, next to their fields) and the service's
(``strategy_check``, what the database cannot say), so the form and the services agree. The
hidden ``version`` is the one the form was opened at: ``strategy_update`` refuses a save when the
strategy has moved on since.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from strategies.models import (
    MAX_STRATEGIES_PER_SCENARIO,
    SMALL_AMOUNT_DEFAULT_PER_REQUEST_CAP,
    SMALL_AMOUNT_MAX_PER_REQUEST_CAP,
    STRATEGY_SETTING_GROUPS,
    STRATEGY_SETTINGS,
    Product,
    Reason,
    Scenario,
    Shop,
    Strategy,
    StrategyTemplate,
)
from strategies.selectors import strategy_consumption_today
from strategies.services.strategies import (
    CHANGE_REASON_MAX_LENGTH,
    StrategyChanged,
    strategy_check,
)
from strategies.services.summary import strategy_save_risks

# The button of the confirmation box posts this: the merchant has read what the save does.
CONFIRM_FIELD = "atom_confirm"
CONFIRM_MESSAGE = _("Check what this save does and confirm it.")

FIELDSET_HELP = {
    "name": _("Shown in the decision log, the consumption dashboard and the alerts."),
    "remark": _("A note for your team, e.g. why this strategy exists. Buyers never see it."),
    "valid_from": _(
        "The strategy starts deciding requests applied from this moment (shop's time). "
        "Empty: at once."
    ),
    "valid_until": _(
        "Requests applied after this moment are no longer decided by it. Empty: no end date."
    ),
    "window_start": _(
        "A daily time range in the shop's time zone; it may cross midnight (22:00-08:00). "
        "Empty: all day."
    ),
    "window_end": _(
        "Outside the window this strategy is skipped; the next one by priority may still "
        "approve. Set both times or neither."
    ),
    "products": _("Empty: every product. Otherwise every item of the order must be chosen."),
    "covers_shipped": _(
        "Orders shipped but not yet received by the buyer. Days are counted from shipment to "
        "the request; an empty range covers the whole status."
    ),
    "shipped_min_days": _("E.g. 3: only requests made at least 3 days after shipment."),
    "shipped_max_days": _("E.g. 7: only requests made at most 7 days after shipment."),
    "covers_received": _(
        "Orders the buyer has received. Days are counted from receipt to the request; an empty "
        "range covers the whole status."
    ),
    "received_min_days": _("E.g. 1: only requests made at least 1 day after receipt."),
    "received_max_days": _("E.g. 15: only requests made at most 15 days after receipt."),
    "daily_cap": _(
        "A request that would take today's total past this cap does not hit this strategy."
    ),
    "per_request_cap": _("The amount of one request must not exceed this. Empty: no limit."),
    "max_hours_since_payment": _(
        "At most this many hours between payment and the request. Empty: no limit."
    ),
    "reasons": _("None ticked: any reason."),
    "risk_control": _("When on, a request the platform flags as risky is never auto-approved."),
    "max_per_buyer_30d": _(
        "At most this many auto-approved requests per buyer in the shop over the last 30 days. "
        "Empty: no limit."
    ),
    "status": _(
        "Inactive: never used. Trial run: evaluated and logged as 'would approve', nothing is "
        "paid. Active: approves requests."
    ),
}


def strategy_fieldsets(scenario: str) -> list[tuple[Any, dict[str, Any]]]:
    """The form's groups for one scenario, in the order the seeds list them."""
    return [
        (group.title, {"fields": group.fields})
        for group in STRATEGY_SETTING_GROUPS
        if group.scenarios is None or scenario in group.scenarios
    ]


def strategy_risk_warnings(*, scenario: str, per_request_cap: Any = None) -> list[Any]:
    """The seeds' risk warnings that apply to a scenario (shown above the form)."""
    warnings: list[Any] = [
        _(
            "The order status is the platform's, not the parcel's real state: an order shown as "
            "shipped or received may not have reached the buyer, or may be on its way back."
        )
    ]
    if scenario == Scenario.PRE_SHIPMENT_REFUND:
        warnings.append(
            _(
                "Refunding before shipment loses the goods if the parcel leaves the warehouse "
                "anyway: stop the shipment first, and set a per-request cap and a product "
                "restriction."
            )
        )
    if scenario in (Scenario.POST_SHIPMENT_NO_RETURN, Scenario.POST_SHIPMENT_REFUND):
        warnings.append(
            _(
                "Refunding after shipment without a return loses both the money and the goods: "
                "set a per-request cap and restrict the strategy to low-value products."
            )
        )
    if scenario == Scenario.TAGGED_REFUND_NO_RETURN:
        warnings.append(
            _("The buyer keeps the goods: set a per-request cap to limit the loss per request.")
        )
    if per_request_cap is None:
        warnings.append(
            _("No per-request cap is set: a single request may take up to the whole daily cap.")
        )
    return warnings


def _message(error: Any) -> str:
    return str(next(iter(error))) if isinstance(error, ValidationError) else str(error)


class StrategyForm(forms.ModelForm):
    atom_shop: Shop | None = None
    atom_scenario: str = ""
    atom_adding: bool = False
    # The service's refusal of this very input a moment ago (the form had passed): shown as the
    # form's errors so the merchant keeps what they typed. Set by ``StrategyAdmin.get_form``.
    atom_refusal: ValidationError | None = None

    reasons = forms.MultipleChoiceField(
        label=_("Accepted reasons"),
        choices=Reason.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    # Not a setting: kept in the history row this save writes (django-simple-history).
    change_reason = forms.CharField(
        label=_("Reason for this change"),
        max_length=CHANGE_REASON_MAX_LENGTH,
        required=False,
        help_text=_("Optional; shown in the strategy's history, e.g. “raised for the 11.11 sale”."),
    )
    # Set by ``clean`` when the save moves money and was not confirmed: what to confirm.
    atom_risks: list[str] | None = None
    atom_ask_confirmation: bool = True

    class Meta:
        model = Strategy
        fields = [*STRATEGY_SETTINGS, "version"]
        widgets = {"version": forms.HiddenInput}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            # The model's checks that involve the scenario (order status) see the right one.
            self.instance.scenario = self.atom_scenario
            if self.atom_shop is not None:
                self.instance.shop = self.atom_shop
        if "version" in self.fields:
            # Absent from a post: no check (a browser always sends what it was given).
            self.fields["version"].required = False
        if "products" in self.fields:
            # Only this shop's products, whatever the admin's widget asked for: a forged id of
            # another shop's product is "not one of the available choices".
            shop_id = self.atom_shop.pk if self.atom_shop else None
            products = (
                Product.objects.filter(shop_id=shop_id) if shop_id else Product.objects.none()
            )
            self.fields["products"].queryset = products.order_by("product_id")  # type: ignore[attr-defined]
        for name, text in FIELDSET_HELP.items():
            if name in self.fields:
                self.fields[name].help_text = text
        small = self.instance.template == StrategyTemplate.SMALL_AMOUNT
        if small and "per_request_cap" in self.fields:
            self.fields["per_request_cap"].help_text = _(
                "Small-amount strategy: at most %(max)s."
            ) % {"max": SMALL_AMOUNT_MAX_PER_REQUEST_CAP}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        values = {
            name: cleaned[name] if name in cleaned else getattr(self.instance, name)
            for name in STRATEGY_SETTINGS
            if name != "products"
        }
        # Fields that failed their own validation are not checked again.
        for name in self.errors:
            values.pop(name, None)
        products = cleaned.get("products") if "products" in self.fields else None
        errors = strategy_check(
            shop=self.atom_shop, scenario=self.atom_scenario, values=values, products=products
        )
        for field, messages in errors.items():
            target = field if field in self.fields else None
            for message in messages:
                self.add_error(target, message)
        if self.atom_adding and self.atom_shop is not None:
            count = Strategy.objects.filter(
                shop=self.atom_shop, scenario=self.atom_scenario
            ).count()
            if count >= MAX_STRATEGIES_PER_SCENARIO:
                self.add_error(
                    None,
                    _(
                        "This scenario already holds %(max)d strategies, the most it may hold: "
                        "delete one first."
                    )
                    % {"max": MAX_STRATEGIES_PER_SCENARIO},
                )
        if self.atom_refusal is not None and not self.errors:
            self._add_refusal(self.atom_refusal)
        if not self.errors and self.atom_ask_confirmation:
            self._ask_confirmation(cleaned)
        return cleaned

    def _ask_confirmation(self, cleaned: dict[str, Any]) -> None:
        """Switching on, raising an active strategy's cap or a daily cap below today's use is
        saved only once confirmed: until then the form comes back with what it will do."""
        before = self.instance if self.instance.pk is not None else None
        opened_at = cleaned.get("version")
        if before is not None and opened_at is not None and opened_at != before.version:
            # A stale form: the save is refused with what changed first (the service), and
            # the next save, from the current version, asks.
            return
        used = None
        if before is not None:
            used = strategy_consumption_today(strategies=[before])[before.pk].consumed
        values = {n: cleaned[n] for n in STRATEGY_SETTINGS if n in cleaned}
        risks = strategy_save_risks(before=before, values=values, used_today=used)
        if risks and self.data.get(CONFIRM_FIELD) != "yes":
            self.atom_risks = risks
            self.add_error(None, str(CONFIRM_MESSAGE))

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]
        # Django skips a constraint when a field it names is not in the form: the template's
        # 20.00 ceiling, the scenario's order status. Check those on the instance as it stands.
        try:
            self.instance.validate_constraints(exclude=set(self.errors))
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                target = field if field in self.fields else None
                for message in messages:
                    if message not in self.errors.get(target or "__all__", []):
                        self.add_error(target, message)
        if (
            self.atom_risks
            and len(self.errors.get(NON_FIELD_ERRORS, []))
            + len([f for f in self.errors if f != NON_FIELD_ERRORS])
            > 1
        ):
            # Something to correct after all (a constraint): that first, the confirmation then.
            self.atom_risks = None
            general = self.errors[NON_FIELD_ERRORS]
            general.data = [e for e in general.data if _message(e) != str(CONFIRM_MESSAGE)]
            if not general:
                del self.errors[NON_FIELD_ERRORS]

    def _add_refusal(self, refusal: ValidationError) -> None:
        if isinstance(refusal, StrategyChanged) and "version" in self.fields:
            # The merchant has now been told what changed: a save from here is deliberate.
            data = self.data.copy()  # type: ignore[attr-defined]
            data[self.add_prefix("version")] = str(refusal.version)
            self.data = data
        if not hasattr(refusal, "error_dict"):
            for message in refusal.messages:
                self.add_error(None, message)
            return
        for field, messages in refusal.message_dict.items():
            target = field if field in self.fields else None
            for message in messages:
                self.add_error(target, message)


class TemplateForm(forms.Form):
    """The one setting asked when creating the small-amount strategy."""

    per_request_cap = forms.DecimalField(
        label=_("per-request cap"),
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0.01"),
        max_value=SMALL_AMOUNT_MAX_PER_REQUEST_CAP,
        initial=SMALL_AMOUNT_DEFAULT_PER_REQUEST_CAP,
        help_text=format_lazy(_("At most {max}."), max=SMALL_AMOUNT_MAX_PER_REQUEST_CAP),
    )


class ImportForm(forms.Form):
    """A strategy file to import (API.md); keeping its statuses is for operators only."""

    file = forms.FileField(
        label=_("Strategy file (JSON)"),
        help_text=_(
            "Imported strategies are added after the existing ones and arrive inactive: switch "
            "them on after checking."
        ),
    )
    keep_status = forms.BooleanField(
        label=_("Keep the file's statuses (restoring a backup)"),
        required=False,
        help_text=_("Strategies active in the file are active at once."),
    )

    def __init__(self, *args: Any, operator: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not operator:
            del self.fields["keep_status"]
