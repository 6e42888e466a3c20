"""Sign-in and the second factor (being built out: enrolment with QR code, verification)."""

from django.http import HttpResponse


def otp_enrol(request):
    return HttpResponse("enrol")


def otp_verify(request):
    return HttpResponse("verify")
