"""CycleGAN's generator (Zhu et al. 2017, after Johnson et al. 2016) and its history of
generated images (Shrivastava et al. 2017). Its discriminator is `patchgan.PatchDiscriminator`
on one image.

    G(x) -> y      x: (B, in_ch, H, W) in [-1, 1]; y: (B, out_ch, H, W) in [-1, 1] (tanh)

A side that is not a multiple of 2^n_down (30 px with two down-samplings) is reflection-padded
up to one (32) and the output cropped back, as in the U-Net (`unet.pad_to_multiple`); 28, 32,
64, 128 and 256 need no padding at n_down=2 (28 has a 7 x 7 bottleneck).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gankit.models.dcgan import _init
from gankit.models.unet import crop, norm2d, pad_to_multiple


def _conv_norm_relu(conv: nn.Module, ch: int, norm: str) -> list[nn.Module]:
    return [conv, norm2d(norm, ch), nn.ReLU()]


class ResidualBlock(nn.Module):
    """x + F(x), F = pad-conv3x3-norm-ReLU-pad-conv3x3-norm with reflection padding of 1 and
    no ReLU after the sum (Johnson et al.'s residual block, as CycleGAN's R256)."""

    def __init__(self, ch: int, norm: str = "instance"):
        super().__init__()
        bias = norm == "none"
        self.f = nn.Sequential(
            nn.ReflectionPad2d(1), *_conv_norm_relu(nn.Conv2d(ch, ch, 3, bias=bias), ch, norm),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3, bias=bias), norm2d(norm, ch),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.f(x)


class ResnetGenerator(nn.Module):
    """x (B, in_ch, H, W) -> y (B, out_ch, H, W).

    c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-out (for width 64, n_down 2):
    c7s1-k is a reflection-padded (3) 7x7 conv-norm-ReLU; dk a 3x3 stride-2 conv-norm-ReLU that
    doubles the channels; uk a 3x3 stride-1/2 transposed conv-norm-ReLU that halves them; the
    last c7s1 maps to out_ch with tanh instead of norm-ReLU. The paper uses 6 blocks at 128 px
    and 9 at 256 px.
    """

    def __init__(self, in_ch: int, out_ch: int, width: int = 64, n_blocks: int = 9,
                 n_down: int = 2, norm: str = "instance"):
        super().__init__()
        norm2d(norm, 1)  # an unknown name fails here, before any layer is built
        self.n_down = n_down
        bias = norm == "none"
        layers: list[nn.Module] = [nn.ReflectionPad2d(3),
                                   *_conv_norm_relu(nn.Conv2d(in_ch, width, 7, bias=bias), width, norm)]
        for i in range(n_down):  # (B, c, s, s) -> (B, 2c, s/2, s/2)
            c = width * 2 ** i
            layers += _conv_norm_relu(nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), 2 * c, norm)
        c = width * 2 ** n_down
        layers += [ResidualBlock(c, norm) for _ in range(n_blocks)]
        for i in reversed(range(n_down)):  # (B, 2c, s, s) -> (B, c, 2s, 2s)
            c = width * 2 ** i
            # output_padding 1: a 3x3 stride-2 transposed conv with padding 1 gives 2s - 1 without it
            up = nn.ConvTranspose2d(2 * c, c, 3, 2, 1, output_padding=1, bias=bias)
            layers += _conv_norm_relu(up, c, norm)
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_ch, 7), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        self.apply(_init)

    def forward(self, x: Tensor) -> Tensor:
        x, pads = pad_to_multiple(x, 2 ** self.n_down)  # (B, in_ch, H', W'), multiples of 2^n_down
        return crop(self.body(x), pads)  # (B, out_ch, H, W)


class ImagePool:
    """A history of up to `size` generated images for D's updates (Shrivastava et al. 2017;
    CycleGAN keeps 50), so that D also sees fakes from earlier generators.

    query(images) -> images of the same shape. While the pool is not full, each image is stored
    and returned as is. Once full, each image is, with probability 1/2, swapped: a uniformly
    drawn stored image is returned and the new one takes its slot; otherwise it is returned
    itself. All draws in one call read the pool as it was before the call (a returned image is
    always from an earlier call); when several swapped images draw the same slot, the last in
    the batch stays there. Stored images are detached copies; gradients flow to the returned
    new images only.

    Nothing in a query of a full pool reads from the device: the draws are made where the images
    are, from `generator` (a torch.Generator on their device) or else from torch's default one
    there, and the choices are applied with torch.where and index_copy_. The fill phase branches
    on the count, a Python int. The buffer follows the images to their device, so a pool loaded
    on the CPU moves on its first query.

    state_dict() -> {"images": (count, C, H, W) tensor or None, "count": int, "rng": the
    generator's state or None}: tensors and ints only, so it loads with weights_only=True.
    """

    def __init__(self, size: int = 50, generator: torch.Generator | None = None):
        if size < 0:
            raise ValueError(f"image pool size must be >= 0, got {size}")
        self.size = size
        self.generator = generator
        self.images: Tensor | None = None  # (size, C, H, W), allocated on the first query
        self.count = 0  # rows of `images` filled; the Python-side count the fill phase branches on

    def query(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        new = images.detach()
        if self.images is None:
            self.images = torch.empty((self.size, *new.shape[1:]), dtype=new.dtype, device=new.device)
        elif self.images.device != new.device:
            self.images = self.images.to(new.device)
        n_fill = min(self.size - self.count, len(new))
        if n_fill:  # filling: store and return the new images
            self.images[self.count:self.count + n_fill] = new[:n_fill]
            self.count += n_fill
            if n_fill == len(new):
                return images
            return torch.cat([images[:n_fill], self._swap(images[n_fill:])])
        return self._swap(images)

    def _swap(self, images: Tensor) -> Tensor:
        """The full-pool query of images (B, C, H, W), on the device without host reads."""
        B, dev = len(images), images.device
        swap = torch.rand(B, generator=self.generator, device=dev) < 0.5  # (B,)
        slot = torch.randint(self.size, (B,), generator=self.generator, device=dev)  # (B,)
        old = self.images.index_select(0, slot)  # (B, C, H, W): the pool before this call
        out = torch.where(swap.view(-1, 1, 1, 1), old, images)
        # Every image writes its slot's final value, so that writes to a repeated slot agree
        # (index_copy_ picks any of them): the last swapped image that drew the slot, or the
        # old value where none did (a no-op write).
        same = (slot[:, None] == slot[None, :]) & swap[None, :]  # (B, B): j swapped into i's slot
        last = (same * torch.arange(1, B + 1, device=dev)).amax(1)  # 1 + the last such j; 0: none
        latest = images.detach().index_select(0, (last - 1).clamp(min=0))
        self.images.index_copy_(0, slot, torch.where((last > 0).view(-1, 1, 1, 1), latest, old))
        return out

    def state_dict(self) -> dict:
        """A snapshot: later queries do not change it."""
        return {
            "images": None if self.images is None else self.images[:self.count].clone(),
            "count": self.count,
            "rng": None if self.generator is None else self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        images, count = state["images"], int(state["count"])
        if count > self.size or (0 if images is None else len(images)) != count:
            raise ValueError(f"image pool state holds {count} images ("
                             f"{0 if images is None else len(images)} stored); this pool holds {self.size}")
        self.images = None
        if images is not None:
            self.images = images.new_empty((self.size, *images.shape[1:]))
            self.images[:count] = images
        self.count = count
        if state.get("rng") is not None and self.generator is not None:
            self.generator.set_state(state["rng"])
