"""DRL pages: comparisons (run, report with box plots, CSV, PDF), due re-comparisons, DRL sets, mapping."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from dosereg.core.quantities import DRL_QUANTITIES, QUANTITIES
from dosereg.registry.models import SiteSettings, StandardExam
from dosereg.registry.services.audit import audit_record
from drl import selectors, services
from drl.charts import box_plot_svg, chart_groups
from drl.comparison import DrlValidationError
from drl.forms import ComparisonRunForm, DrlSetImportForm, MapNameForm, MappingRuleForm
from drl.models import DrlComparison, DrlSet, DueComparison, MappingRule
from drl.pdf import drl_comparison_pdf

VIEW = permission_required("drl.view_drlcomparison", raise_exception=True)
RUN = permission_required("drl.run_drl_comparison", raise_exception=True)
MAPPING = permission_required("drl.manage_mapping", raise_exception=True)
SETS = permission_required("drl.manage_drl_sets", raise_exception=True)


@VIEW
def drl_home(request):
    runs = DrlComparison.objects.select_related("created_by", "equipment").annotate(n_rows=Count("rows"))[:50]
    return render(request, "drl/home.html", {"runs": runs, "due_units": selectors.due_by_unit(),
                                             "min_patients": SiteSettings.load().drl_min_patients,
                                             "form": ComparisonRunForm(),
                                             "sets": DrlSet.objects.annotate(n=Count("entries"))})


@RUN
@require_POST
def drl_run(request):
    form = ComparisonRunForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(e for errs in form.errors.values() for e in errs))
        return redirect("drl:home")
    run = services.drl_comparison_run(period_start=form.cleaned_data["period_start"],
                                      period_end=form.cleaned_data["period_end"], user=request.user,
                                      include_demo=form.cleaned_data["include_demo"])
    messages.success(request, f"DRL comparison {run.pk} made ({run.rows.count()} rows).")
    return redirect("drl:report", pk=run.pk)


@RUN
@require_POST
def drl_due_run(request, pk: int):
    run = services.drl_due_run(due_id=get_object_or_404(DueComparison, pk=pk).pk, user=request.user)
    messages.success(request, f"Re-comparison {run.pk} made for the period since the change.")
    return redirect("drl:report", pk=run.pk)


@VIEW
def drl_report(request, pk: int):
    run = get_object_or_404(DrlComparison.objects.select_related("created_by", "equipment"), pk=pk)
    rows = list(run.rows.all().order_by("exam_code", "quantity", "per", "view", "thickness_min_mm", "patient_group",
                                        "equipment_name"))
    charts = []
    for g in chart_groups(rows):
        svg = box_plot_svg(g.rows, title=g.title, quantity=g.column)
        if svg:
            charts.append({"code": g.code, "name": g.name, "label": g.label, "per": g.per, "group": g.group,
                           "svg": svg})
    sets = {r.drl_set_name: r.drl_source for r in rows if r.drl_set_name}
    audit_record(user=request.user, action="drl_report_viewed", object_type="drl.DrlComparison",
                 object_id=str(run.pk), request=request)
    return render(request, "drl/report.html", {"run": run, "rows": rows, "charts": charts, "sets": sets,
                                               "any_verify": any(r.verify for r in rows)})


@VIEW
def drl_report_pdf(request, pk: int):
    run = get_object_or_404(DrlComparison, pk=pk)
    response = HttpResponse(drl_comparison_pdf(run), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="drl-comparison-{run.pk}.pdf"'
    audit_record(user=request.user, action="drl_report_pdf", object_type="drl.DrlComparison", object_id=str(run.pk),
                 request=request)
    return response


@VIEW
def drl_report_csv(request, pk: int):
    run = get_object_or_404(DrlComparison, pk=pk)
    response = HttpResponse(services.drl_report_csv(selectors.drl_report_rows(run)), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="drl-comparison-{run.pk}.csv"'
    return response


@VIEW
def drl_sets(request):
    return render(request, "drl/sets.html", {"sets": DrlSet.objects.prefetch_related("entries__standard_exam"),
                                             "import_form": DrlSetImportForm()})


@SETS
def drl_set_import(request):
    form = DrlSetImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            text = form.cleaned_data["file"].read().decode("utf-8")
            drl_set = services.drl_set_import_csv(
                text=text, name=form.cleaned_data["name"], issuing_body=form.cleaned_data["issuing_body"],
                year=form.cleaned_data["year"], source=form.cleaned_data["source"],
                country=form.cleaned_data["country"], verify=form.cleaned_data["verify"], user=request.user)
        except UnicodeDecodeError:
            form.add_error("file", "The file is not UTF-8 text; nothing was imported.")
        except DrlValidationError as exc:
            form.add_error("file", f"{exc}. Nothing was imported.")
        else:
            messages.success(request, f"DRL set {drl_set.name!r} imported ({drl_set.entries.count()} entries).")
            return redirect("drl:sets")
    quantities = [(key, QUANTITIES[key].label, QUANTITIES[key].unit_symbol) for key in DRL_QUANTITIES]
    return render(request, "drl/set_import.html", {"form": form, "quantities": quantities})


@SETS
@require_POST
def drl_set_toggle(request, pk: int):
    drl_set = get_object_or_404(DrlSet, pk=pk)
    drl_set.active = not drl_set.active
    drl_set.save(update_fields=["active"])
    audit_record(user=request.user, action="drl_set_active" if drl_set.active else "drl_set_inactive",
                 object_type="drl.DrlSet", object_id=str(pk), request=request)
    return redirect("drl:sets")


@MAPPING
def mapping(request):
    names = selectors.unmapped_names()
    rules = services.mapping_rules_in_order(MappingRule.objects.select_related("standard_exam", "equipment"))
    return render(request, "drl/mapping.html", {
        "names": names, "rules": rules, "exams": StandardExam.objects.all(), "rule_form": MappingRuleForm()})


def _preview(request, *, rule, queryset, action: str, what: str):
    """The page shown before a mapping is saved: what it moves and how the medians shift; its form posts the
    same fields again with ``confirm``."""
    try:
        preview = services.mapping_preview(rule, queryset=queryset)
    except services.MappingError as exc:
        messages.error(request, f"Rule refused: {exc}")
        return redirect("drl:mapping")
    fields = [(k, v) for k, v in request.POST.items() if k not in ("csrfmiddlewaretoken", "confirm")]
    return render(request, "drl/mapping_preview.html", {"preview": preview, "fields": fields, "action": action,
                                                        "what": what, "exam": rule.standard_exam})


@MAPPING
@require_POST
def mapping_assign(request):
    form = MapNameForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a standard examination.")
        return redirect("drl:mapping")
    name, modality_type, exam = (form.cleaned_data[k] for k in ("name", "modality_type", "exam"))
    if not request.POST.get("confirm"):
        return _preview(request, rule=services.mapping_name_rule(name=name, modality_type=modality_type, exam=exam),
                        queryset=services.mapping_name_studies(name=name, modality_type=modality_type),
                        action="drl:mapping_assign", what=f"the name {name!r}")
    rule, counts = services.mapping_name_assign(name=name, modality_type=modality_type, exam=exam,
                                                user=request.user)
    messages.success(request, f"{name!r} now maps to {rule.standard_exam.name}: {counts.get('changed', 0)} "
                              f"stored studies updated.")
    return redirect("drl:mapping")


@MAPPING
@require_POST
def mapping_rule_add(request):
    form = MappingRuleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Rule refused: " + "; ".join(e for errs in form.errors.values() for e in errs))
        return redirect("drl:mapping")
    rule = form.save(commit=False)
    rule.created_by = request.user
    if not request.POST.get("confirm"):
        return _preview(request, rule=rule, queryset=None, action="drl:mapping_rule_add",
                        what=f"the rule {rule.get_field_display().lower()} {rule.match} {rule.pattern!r}")
    rule, warnings, counts = services.mapping_rule_save(rule, user=request.user)
    for w in warnings:
        messages.warning(request, f"Rule {rule.pk}: {w}.")
    messages.success(request, f"Rule {rule.pk} saved; {counts.get('changed', 0)} stored studies re-mapped.")
    return redirect("drl:mapping")


@MAPPING
@require_POST
def mapping_rule_toggle(request, pk: int):
    rule = get_object_or_404(MappingRule, pk=pk)
    rule.active = not rule.active
    rule.save(update_fields=["active"])
    counts = services.map_studies()
    audit_record(user=request.user, action="drl_mapping_rule_toggled", object_type="drl.MappingRule",
                 object_id=str(pk), detail={"active": rule.active}, request=request)
    messages.success(request, f"Rule {pk} {'enabled' if rule.active else 'disabled'}; {counts['changed']} studies "
                              f"re-mapped.")
    return redirect("drl:mapping")


@MAPPING
@require_POST
def mapping_reapply(request):
    counts = services.map_studies()
    audit_record(user=request.user, action="drl_mapping_reapplied", object_type="drl.MappingRule", detail=counts,
                 request=request)
    messages.success(request, f"Rules re-applied: {counts['changed']} studies changed, {counts['unmapped']} unmapped.")
    return redirect("drl:mapping")
