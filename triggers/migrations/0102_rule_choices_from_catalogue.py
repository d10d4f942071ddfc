# The rule quantities' labels and the threshold units now come from the quantity catalogue
# (dosereg.core.quantities): labels such as "Ka,r total", and the units a form offers (e.g. Gy for CTDIvol).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('triggers', '0101_incident_permissions'),
    ]

    operations = [
        migrations.AlterField(
            model_name='triggerrule',
            name='quantity',
            field=models.CharField(choices=[('ka_r_total_mgy', 'Ka,r total (ka_r_total_mgy)'), ('kap_total_gycm2', 'KAP total (kap_total_gycm2)'), ('fluoro_time_total_s', 'Fluoroscopy time (fluoro_time_total_s)'), ('ctdivol_mgy', 'CTDIvol (ctdivol_mgy)'), ('dlp_total_mgycm', 'DLP total (dlp_total_mgycm)'), ('agd_mgy', 'AGD (agd_mgy)'), ('activity_mbq', 'Administered activity (activity_mbq)'), ('effective_dose_msv', 'Effective dose (estimate) (effective_dose_msv)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='triggerrule',
            name='unit',
            field=models.CharField(choices=[('GBq', 'GBq'), ('Gy', 'Gy'), ('Gy·cm', 'Gy·cm'), ('Gy·cm²', 'Gy·cm²'), ('Gy·m²', 'Gy·m²'), ('MBq', 'MBq'), ('cGy·cm²', 'cGy·cm²'), ('dGy·cm²', 'dGy·cm²'), ('mGy', 'mGy'), ('mGy·cm', 'mGy·cm'), ('mGy·cm²', 'mGy·cm²'), ('mSv', 'mSv'), ('min', 'min'), ('s', 's'), ('µGy·m²', 'µGy·m²')], max_length=12),
        ),
    ]
