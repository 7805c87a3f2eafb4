"""Door and alarm hardware behind one interface: simulated, gpiozero or libgpiod backends."""

from hardware.base import Backend, HardwareConfigError, HardwareError, Input, Output
from hardware.events import ContactChanged, ExitRequested, HardwareEvent, TamperChanged

BACKENDS: dict[str, str] = {
    "sim": "hardware.sim:SimBackend",
    "gpiozero": "hardware.gpiozero_backend:GpiozeroBackend",
    "gpiod": "hardware.gpiod_backend:GpiodBackend",
}


def open_backend(name: str, **options: object) -> Backend:
    """Build a backend by name; the hardware library is imported only here."""
    import importlib

    if name not in BACKENDS:
        known = ", ".join(sorted(BACKENDS))
        raise HardwareConfigError(f"unknown GPIO backend {name!r} (known: {known})")
    module_name, _, cls_name = BACKENDS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # the backend's optional library is not installed
        raise HardwareError(
            f"GPIO backend {name!r} cannot be loaded: {exc} "
            f"(install nyutai's {'gpio' if name == 'gpiozero' else name!r} extra)"
        ) from exc
    cls = getattr(module, cls_name)
    backend: Backend = cls(**options)
    return backend


__all__ = [
    "BACKENDS",
    "Backend",
    "ContactChanged",
    "ExitRequested",
    "HardwareConfigError",
    "HardwareError",
    "HardwareEvent",
    "Input",
    "Output",
    "TamperChanged",
    "open_backend",
]
