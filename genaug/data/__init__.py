"""Data layer: folder, MedMNIST and demo sources; patient-level splits; decode-once cache; batches."""
from genaug.data.core import DataBundle, ImageSet
from genaug.data.loading import check_data_spec, check_out_outside_data, classes_from_spec, load_data, resolve_classes
from genaug.data.splits import patient_folds, patient_id, split_by_patient, subsample_by_patient

__all__ = ["DataBundle", "ImageSet", "check_data_spec", "check_out_outside_data", "classes_from_spec", "load_data", "patient_folds", "patient_id", "resolve_classes", "split_by_patient", "subsample_by_patient"]
