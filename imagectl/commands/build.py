"""``imagectl build``: plan (what to build, reuse or push, and why), then apply.

The base image is rebuilt only when the content hash of its inputs has no image in the registry yet; that image
carries the tag ``ctx-<hash>``. The build image is built FROM the base by digest (build argument BASE_IMAGE).
Both images of a build get the tag ``<JIRA>-<BUILD>``; a tag that exists with other content is refused before
anything is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from imagectl import labels as L
from imagectl.build_info import resolve_build
from imagectl.config import Config, ImageConfig
from imagectl.context_hash import context_hash
from imagectl.errors import ConflictError, DockerError
from imagectl.labels import BuildInfo
from imagectl.progress import Progress
from imagectl.records import read_record
from imagectl.registries import Registry, RepositoryChange, open_registry
from imagectl.tag_registry import write_record
from imagectl.tagging import context_tag, record_tag


@dataclass
class ImagePlan:
    image: str  # "base" | "build"
    repository: str
    tag: str
    reference: str  # host/repository:tag
    action: str  # "build" | "reuse" | "done" (this tag was already pushed by this same build)
    reason: str
    context_hash: str | None = None
    existing_digest: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)


@dataclass
class BuildPlan:
    environment: str
    registry: str
    registry_kind: str
    registry_host: str
    tag: str
    jira: str
    jira_source: str
    build_number: int
    commit: str
    branch: str | None
    push: bool
    images: list[ImagePlan]
    repository_changes: list[RepositoryChange]
    info: BuildInfo

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("info")
        data["repository_changes"] = [asdict(c) for c in self.repository_changes]
        return data


@dataclass
class ImageResult:
    image: str
    tag: str
    reference: str
    digest: str | None
    reused: bool
    pushed: bool
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BuildResult:
    images: list[ImageResult]
    plan: BuildPlan

    def to_json(self) -> dict[str, Any]:
        return {"tag": self.plan.tag, "environment": self.plan.environment, "images": [i.to_json() for i in self.images]}


def _args_for(image: ImageConfig, extra: Mapping[str, str]) -> dict[str, str]:
    return {**image.build_args, **extra}


def _existing_same_build(registry: Registry, image: ImageConfig, tag: str, info: BuildInfo) -> tuple[str | None, bool]:
    """(digest, same_build) of an existing ``tag``: same_build when its record says the same commit and build."""
    found = registry.get_manifests(image.repository, [tag, record_tag(tag)])
    manifest = found.get(tag)
    if manifest is None:
        return None, False
    record = found.get(record_tag(tag))
    if record is not None:
        subject, annotations = read_record(record)
        same = (
            subject == manifest.digest
            and annotations.get(L.TAGGED_REVISION) == info.commit
            and annotations.get(L.TAGGED_BUILD) == str(info.build_number)
        )
        return manifest.digest, same
    return manifest.digest, False


def _refuse_existing(registry: Registry, image: ImageConfig, tag: str, digest: str) -> ConflictError:
    return ConflictError(
        f"{registry.reference(image.repository, tag)} already exists ({digest[:19]}) from another commit or build",
        "tags are never moved: use a new build number (--build-number) or another Jira key",
    )


def plan_build(
    config: Config,
    environment: str,
    which: str | None,
    info: BuildInfo,
    jira_source: str,
    *,
    extra_build_args: Mapping[str, str],
    push: bool,
    registry: Registry | None = None,
) -> BuildPlan:
    reg_config = config.registry_for(environment)
    registry = registry or open_registry(reg_config)
    names = [which] if which else ["base", "build"]
    plans: list[ImagePlan] = []
    changes: list[RepositoryChange] = []

    for name in names:
        image = config.images[name]
        if push:
            changes.extend(registry.plan_repository(image.repository))
        args = _args_for(image, extra_build_args)
        reference = registry.reference(image.repository, info.tag)
        existing, same_build = _existing_same_build(registry, image, info.tag, info)
        if existing and not same_build:
            raise _refuse_existing(registry, image, info.tag, existing)
        if name == "base":
            digest_hash = context_hash(image.context, image.dockerfile, args)
            if existing:
                plans.append(
                    ImagePlan(
                        name, image.repository, info.tag, reference, "done", "this build already pushed it", digest_hash, existing, args
                    )
                )
                continue
            reusable = registry.get_manifest(image.repository, context_tag(digest_hash))
            if reusable is not None:
                plans.append(
                    ImagePlan(
                        name,
                        image.repository,
                        info.tag,
                        reference,
                        "reuse",
                        f"inputs unchanged (context {digest_hash[:12]})",
                        digest_hash,
                        reusable.digest,
                        args,
                    )
                )
            else:
                plans.append(
                    ImagePlan(
                        name,
                        image.repository,
                        info.tag,
                        reference,
                        "build",
                        f"no image with context {digest_hash[:12]} in {registry.name}",
                        digest_hash,
                        None,
                        args,
                    )
                )
        else:
            if existing:
                plans.append(
                    ImagePlan(name, image.repository, info.tag, reference, "done", "this build already pushed it", None, existing, args)
                )
            else:
                plans.append(ImagePlan(name, image.repository, info.tag, reference, "build", "built on every run", None, None, args))

    return BuildPlan(
        environment=environment,
        registry=registry.name,
        registry_kind=registry.kind,
        registry_host=registry.host,
        tag=info.tag,
        jira=info.jira,
        jira_source=jira_source,
        build_number=info.build_number,
        commit=info.commit,
        branch=info.branch,
        push=push,
        images=plans,
        repository_changes=changes,
        info=info,
    )


def _base_for_build(config: Config, registry: Registry, plan: BuildPlan, results: dict[str, ImageResult]) -> tuple[str, str | None]:
    """(BASE_IMAGE build argument, base digest) for the build image; no digest for a base built but not pushed."""
    base = config.images["base"]
    if "base" in results:
        result = results["base"]
        if result.digest:
            return registry.reference(base.repository, digest=result.digest), result.digest
        return registry.reference(base.repository, plan.tag), None  # built locally with --no-push
    # Only the build image was asked for: use this build's base tag, else the base built from the same inputs.
    manifest = registry.get_manifest(base.repository, plan.tag)
    if manifest is None:
        base_hash = context_hash(base.context, base.dockerfile, base.build_args)
        manifest = registry.get_manifest(base.repository, context_tag(base_hash))
    if manifest is None:
        raise DockerError(
            f"no base image for {plan.tag} in registry '{registry.name}'",
            "run 'imagectl build base' (or 'imagectl build') first",
        )
    return registry.reference(base.repository, digest=manifest.digest), manifest.digest


def apply_build(config: Config, plan: BuildPlan, docker: Any, progress: Progress, registry: Registry | None = None) -> BuildResult:
    registry = registry or open_registry(config.registry_for(plan.environment))
    if plan.push and plan.repository_changes:
        for change in plan.repository_changes:
            progress.say(f"registry {registry.name}: {change.action} {change.repository} ({change.detail})")
        registry.apply_repository(plan.repository_changes)
    auth = registry.docker_auth() if plan.push or any(p.action == "reuse" for p in plan.images) else None
    results: dict[str, ImageResult] = {}

    for image_plan in plan.images:
        image = config.images[image_plan.image]
        if image_plan.action == "done":
            progress.say(f"{image_plan.image}: {image_plan.reference} already pushed by this build, nothing to do")
            results[image_plan.image] = ImageResult(
                image_plan.image,
                plan.tag,
                registry.reference(image.repository, plan.tag, image_plan.existing_digest),
                image_plan.existing_digest,
                reused=True,
                pushed=False,
                note="already pushed",
            )
            continue
        if image_plan.action == "reuse":
            progress.say(f"base: reusing {registry.reference(image.repository, digest=image_plan.existing_digest)} ({image_plan.reason})")
            pushed = False
            if plan.push:
                manifest = registry.get_manifest(image.repository, context_tag(image_plan.context_hash or ""))
                assert manifest is not None  # the plan just saw it; ctx tags are never deleted by imagectl
                pushed = registry.put_manifest(image.repository, plan.tag, manifest)
                # The record keeps the base image's true labels (from the build that made it) and says it was reused.
                original = registry.get_manifest(image.repository, record_tag(context_tag(image_plan.context_hash or "")))
                labels = (
                    read_record(original)[1]
                    if original is not None
                    else L.image_labels(plan.info, "base", context_hash=image_plan.context_hash)
                )
                write_record(registry, image.repository, plan.tag, manifest, labels, plan.info, reused_from=labels.get(L.VERSION))
            results["base"] = ImageResult(
                "base",
                plan.tag,
                registry.reference(image.repository, plan.tag, image_plan.existing_digest),
                image_plan.existing_digest,
                reused=True,
                pushed=pushed,
            )
            continue

        # action == "build"
        args = dict(image_plan.build_args)
        if image_plan.image == "build":
            base_ref, base_digest = _base_for_build(config, registry, plan, results)
            if base_digest and not docker.has_image(base_ref):
                progress.start(f"base: pulling {base_ref}")
                docker.pull(base_ref.split("@")[0], base_ref.split("@")[1], auth, progress.event)
            args["BASE_IMAGE"] = base_ref
            labels = L.image_labels(plan.info, "build", base_digest=base_digest)
            labels[L.BASE_REF] = base_ref
        else:
            labels = L.image_labels(plan.info, "base", context_hash=image_plan.context_hash)
        progress.start(f"{image_plan.image}: building {image_plan.reference}")
        try:
            image_id = docker.build(
                context=image.context,
                dockerfile=image.dockerfile,
                tag=image_plan.reference,
                build_args=args,
                labels=labels,
                network_mode=image.network_mode,
                on_event=progress.event,
            )
        except DockerError as exc:
            if not progress.quiet:
                exc.details = ""  # the step's output was streamed already
            raise
        if not plan.push:
            progress.say(f"{image_plan.image}: built {image_plan.reference} ({image_id[:19]}), not pushed (--no-push)")
            results[image_plan.image] = ImageResult(
                image_plan.image, plan.tag, image_plan.reference, None, reused=False, pushed=False, note=image_id
            )
            continue
        progress.start(f"{image_plan.image}: pushing {image_plan.reference}")
        digest = docker.push(registry.reference(image.repository), plan.tag, auth, progress.event)
        manifest = registry.get_manifest(image.repository, plan.tag)
        if manifest is None or manifest.digest != digest:
            raise ConflictError(
                f"{image_plan.reference} does not hold the pushed digest {digest[:19]} after the push",
                "another build pushed the same tag at the same time; use a new build number",
            )
        if image_plan.image == "base" and image_plan.context_hash:
            ctx = context_tag(image_plan.context_hash)
            try:
                registry.put_manifest(image.repository, ctx, manifest)
                write_record(registry, image.repository, ctx, manifest, labels, plan.info)
            except ConflictError:
                # A concurrent build pushed the same inputs first; both images are valid, theirs keeps the ctx tag.
                progress.say(f"base: {ctx[:16]}… was pushed concurrently by another build; keeping it")
        write_record(registry, image.repository, plan.tag, manifest, labels, plan.info)
        progress.say(f"{image_plan.image}: pushed {image_plan.reference}@{digest}")
        results[image_plan.image] = ImageResult(
            image_plan.image, plan.tag, registry.reference(image.repository, plan.tag, digest), digest, reused=False, pushed=True
        )

    return BuildResult(images=list(results.values()), plan=plan)


def build(
    config: Config,
    environment: str,
    which: str | None,
    *,
    jira: str | None,
    build_number: str | None,
    tag: str | None,
    extra_build_args: Mapping[str, str],
    push: bool,
    dry_run: bool,
    environ: Mapping[str, str],
    progress: Progress,
) -> BuildPlan | BuildResult:
    """Resolve what this build is, plan it, and (unless dry-run) build and push it."""
    resolved = resolve_build(config, jira=jira, build_number=build_number, tag=tag, environ=environ)
    registry = open_registry(config.registry_for(environment))
    plan = plan_build(
        config, environment, which, resolved.info, resolved.jira_source, extra_build_args=extra_build_args, push=push, registry=registry
    )
    if dry_run:
        return plan
    from imagectl.adapters.docker_engine import DockerEngine  # only a real build needs the engine

    return apply_build(config, plan, DockerEngine(), progress, registry=registry)
