"""A patient's history read from one index: the key (patient, study date, study time, id) gives the page's order and
the included columns (``PATIENT_HISTORY_COLUMNS``) everything it shows, so PostgreSQL answers it with an index-only
scan instead of visiting one table page per study.  It replaces study_patient_date_idx, whose key it extends (the
patient search's counts and date range keep their index); the new index is built before the old one is dropped.
SQLite builds the key alone (``include`` is PostgreSQL's)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("registry", "0012_pregnancy_status"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="study",
            index=models.Index(
                fields=["patient", "study_date", "study_datetime", "id"],
                include=("study_instance_uid", "accession_number", "equipment", "standard_exam", "modality_type",
                         "modality_types", "study_description", "pregnancy_status", "demo", "dlp_total_mgycm",
                         "max_ctdivol_mgy", "kap_total_gycm2", "ka_r_total_mgy", "fluoro_time_total_s",
                         "agd_left_mgy", "agd_right_mgy", "activity_mbq", "effective_dose_msv"),
                name="study_patient_history_idx"),
        ),
        migrations.RemoveIndex(
            model_name="study",
            name="study_patient_date_idx",
        ),
    ]
