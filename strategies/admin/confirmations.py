"""The "paid" / "not paid" confirmations of a request left ``unknown`` (an ambiguous attempt
the platform could not settle), as admin actions: ONE implementation, the base of the
after-sales request list's admin (platform data) and the review queue (docs/review.md).

Thin: the intermediate page shows what is confirmed before the money record changes (posted
back with ``post=yes``), then each request goes through the execution service's audited
``decision_confirm_paid`` / ``decision_confirm_not_paid``, or, for a person's review left
``unknown``, the review service's ``review_confirm_paid`` / ``review_confirm_not_paid``. Who
may confirm is the admin's ``has_confirm_permission`` (owners, and operators where the admin
allows them).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from strategies.admin.tenancy import shop_context
from strategies.models import ExecutionConfirmation, RequestStatus, Review, ReviewResult
from strategies.pipeline.execute import decision_confirm_not_paid, decision_confirm_paid
from strategies.pipeline.review import review_confirm_not_paid, review_confirm_paid

CONFIRM_TEMPLATE = "admin/strategies/aftersalerequest/confirm_execution.html"


class PaymentConfirmationAdmin(admin.ModelAdmin):
    """A ModelAdmin of after-sales requests with the actions ``confirm_paid`` /
    ``confirm_not_paid`` (list them in ``actions``). ``confirm_back_query`` is the list's query
    that shows the requests awaiting confirmation (the page's "take me back" link)."""

    confirm_back_query = "status__exact=unknown"

    def has_confirm_permission(self, request: HttpRequest) -> bool:
        return shop_context(request).may_edit

    @admin.action(
        description=_("Confirm the selected requests were PAID (awaiting confirmation only)"),
        permissions=["confirm"],
    )
    def confirm_paid(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._confirm(request, queryset, paid=True)

    @admin.action(
        description=_(
            "Confirm the selected requests were NOT PAID and release their reservations "
            "(awaiting confirmation only)"
        ),
        permissions=["confirm"],
    )
    def confirm_not_paid(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._confirm(request, queryset, paid=False)

    def _confirm(
        self, request: HttpRequest, queryset: QuerySet, *, paid: bool
    ) -> HttpResponse | None:
        # Two kinds wait for a confirmation: an automatic execution left ``unknown`` (the
        # request's status) and a person's review left ``unknown`` (the request still waits
        # in the queue, held by the review). One page and one message for both.
        waiting = list(
            queryset.filter(status=RequestStatus.UNKNOWN, decision__isnull=False).select_related(
                "decision"
            )
        )
        for r in waiting:
            r.confirm_review_id = None
            r.confirm_detail = r.decision.failure_reason
        unknown_reviews = {
            review.request_id: review
            for review in Review.objects.filter(
                request__in=queryset.exclude(status=RequestStatus.UNKNOWN).values("pk"),
                result=ReviewResult.UNKNOWN,
            ).only("pk", "request_id", "detail")
        }
        for r in queryset.filter(pk__in=list(unknown_reviews)):
            review = unknown_reviews[r.pk]
            r.confirm_review_id = review.pk
            r.confirm_detail = review.detail
            waiting.append(r)
        if not waiting:
            self.message_user(
                request,
                gettext("None of the selected requests is awaiting confirmation: nothing done."),
                messages.WARNING,
            )
            return None
        if request.POST.get("post") != "yes":
            # Money is at stake: the person sees what they confirm before it is done.
            opts = self.model._meta
            back = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
            query = "&".join(
                filter(
                    None, [self.confirm_back_query, urlencode(shop_context(request).shop_query())]
                )
            )
            return TemplateResponse(
                request,
                CONFIRM_TEMPLATE,
                {
                    **self.admin_site.each_context(request),
                    "title": gettext("Confirm paid") if paid else gettext("Confirm not paid"),
                    "opts": opts,
                    "requests": waiting,
                    "reviews": any(r.confirm_review_id is not None for r in waiting),
                    "paid": paid,
                    "action": "confirm_paid" if paid else "confirm_not_paid",
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                    "skipped": queryset.count() - len(waiting),
                    "back_url": f"{back}?{query}",
                },
            )
        user = request.user
        if not isinstance(user, AbstractBaseUser):  # an action needs a signed-in user
            raise PermissionDenied
        confirm = decision_confirm_paid if paid else decision_confirm_not_paid
        confirm_review = review_confirm_paid if paid else review_confirm_not_paid
        done = sum(
            confirm_review(review_id=r.confirm_review_id, user=user)
            if r.confirm_review_id is not None
            else confirm(decision_id=r.decision.pk, user=user)
            for r in waiting
        )
        verdict = (
            ExecutionConfirmation.Verdict.PAID.label
            if paid
            else ExecutionConfirmation.Verdict.NOT_PAID.label
        )
        self.message_user(
            request,
            ngettext(
                "%(n)d request confirmed “%(verdict)s”.",
                "%(n)d requests confirmed “%(verdict)s”.",
                done,
            )
            % {"n": done, "verdict": verdict},
            messages.SUCCESS,
        )
        if done < len(waiting):
            self.message_user(
                request,
                gettext("%(n)d were confirmed by someone else meanwhile: left as they are.")
                % {"n": len(waiting) - done},
                messages.WARNING,
            )
        return None
