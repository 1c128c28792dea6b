from django.conf import settings


def product(request) -> dict[str, str]:
    """The back office's name, for pages outside the admin's own context (403, 404)."""
    return {"PRODUCT_NAME": settings.PRODUCT_NAME}
